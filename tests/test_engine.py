"""The engine on the real default model: answers, streaming, stop, stats, context policy."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from homefire.config import GenerationSettings
from homefire.engine import Engine
from homefire.engine.template import CHATML, ChatTemplate
from homefire.errors import ModelError, PromptError

from .conftest import write_gguf

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def ask(text: str) -> list[dict[str, str]]:
    return [SYSTEM, {"role": "user", "content": text}]


def test_answers_the_capital_of_france(engine: Engine, greedy: GenerationSettings) -> None:
    pieces = list(engine.stream(ask("What is the capital of France?"), greedy))
    assert "Paris" in "".join(pieces)
    assert len(pieces) > 1  # streamed, not returned at once
    stats = engine.last_stats
    assert stats is not None and stats.finish_reason == "stop"
    assert stats.completion_tokens >= len(pieces)
    assert stats.time_to_first_token_s > 0 and stats.decode_tokens_per_s > 0 and stats.prefill_tokens_per_s > 0
    assert stats.prompt_tokens == len(engine.prompt_tokens(ask("What is the capital of France?")))


def test_greedy_is_repeatable(engine: Engine, greedy: GenerationSettings) -> None:
    engine.reset()
    first = engine.generate(ask("Name three fruits."), greedy)
    engine.reset()
    assert engine.generate(ask("Name three fruits."), greedy) == first


def test_follow_up_reuses_the_cached_prefix(engine: Engine, greedy: GenerationSettings) -> None:
    messages = ask("What is the capital of France?")
    answer = engine.generate(messages, greedy)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And of Italy?"}]
    engine.generate(messages, greedy)
    stats = engine.last_stats
    assert stats is not None
    assert stats.prompt_tokens_evaluated < stats.prompt_tokens / 2


def test_max_tokens_ends_with_length(engine: Engine, greedy: GenerationSettings) -> None:
    engine.generate(ask("Write a long story about a dragon."), replace(greedy, max_tokens=5))
    assert engine.last_stats is not None
    assert engine.last_stats.completion_tokens == 5
    assert engine.last_stats.finish_reason == "length"


def test_cancel_stops_at_the_next_token(engine: Engine, greedy: GenerationSettings) -> None:
    cancel = threading.Event()
    pieces = []
    for piece in engine.stream(ask("Write a long story about a dragon."), replace(greedy, max_tokens=300), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    assert engine.last_stats is not None and engine.last_stats.finish_reason == "cancelled"
    # The engine is usable at once after a stop.
    assert "Paris" in engine.generate(ask("What is the capital of France?"), greedy)


def test_abandoned_stream_leaves_engine_usable(engine: Engine, greedy: GenerationSettings) -> None:
    stream = engine.stream(ask("Count from one to fifty."), replace(greedy, max_tokens=100))
    next(stream)
    stream.close()
    assert "Paris" in engine.generate(ask("What is the capital of France?"), greedy)


def test_one_answer_at_a_time(engine: Engine, greedy: GenerationSettings) -> None:
    stream = engine.stream(ask("Count from one to fifty."), replace(greedy, max_tokens=50))
    next(stream)
    with pytest.raises(ModelError, match="busy"):
        next(engine.stream(ask("Hi"), greedy))
    stream.close()


def test_history_is_trimmed_oldest_first_and_system_kept(engine: Engine) -> None:
    history = [SYSTEM]
    for i in range(60):
        history.append({"role": "user", "content": f"Note number {i}: " + "blue sky " * 10})
        history.append({"role": "assistant", "content": f"Noted {i}."})
    history.append({"role": "user", "content": "What is the capital of France?"})
    tokens, dropped, prefix = engine.fit(history, max_tokens=64)
    assert engine.detokenize(tokens[:prefix]).rstrip().endswith("You are a helpful assistant.")
    assert dropped > 0 and dropped % 2 == 0  # whole exchanges go
    assert len(tokens) <= engine.n_ctx - 64
    text = engine.detokenize(tokens)
    assert "You are a helpful assistant." in text
    assert "Note number 0:" not in text and "Note number 59:" in text
    assert text.rstrip().endswith("assistant")


def test_a_single_message_larger_than_the_context_is_a_clear_error(engine: Engine, greedy: GenerationSettings) -> None:
    huge = "word " * 5000
    with pytest.raises(PromptError, match="too long for the context"):
        list(engine.stream(ask(huge), greedy))
    assert "Paris" in engine.generate(ask("What is the capital of France?"), greedy)


def test_tokens_round_trip_utf8(engine: Engine) -> None:
    text = "héllo wörld — 東京 🌍"
    assert engine.detokenize(engine.tokenize(text, special=False)) == text
    assert engine.count_tokens(text) > 5


def test_template_comes_from_the_model(engine: Engine) -> None:
    text = engine.template.render(ask("Hi"))
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_chatml_is_the_fallback_template() -> None:
    template = ChatTemplate(None)
    assert template.source == CHATML
    assert (
        template.render([{"role": "user", "content": "Hi"}])
        == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_broken_template_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="chat template"):
        ChatTemplate("{% for m in messages %}")
    with pytest.raises(ModelError, match="refused"):
        ChatTemplate("{{ raise_exception('no system role') }}").render([])


def test_a_gguf_llama_cpp_cannot_load_is_a_model_error(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "foreign.gguf", {"general.architecture": "nonesuch"})
    with pytest.raises(ModelError, match="could not load"):
        Engine(path)
