"""The batching scheduler on the real default model: the API server's engine side (issue 19)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from homefire.config import GenerationSettings
from homefire.engine import Engine
from homefire.engine.batch import Job, QueueFull, Scheduler, StopMatcher, json_grammar
from homefire.errors import PromptError

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def ask(text: str) -> list[dict[str, str]]:
    return [SYSTEM, {"role": "user", "content": text}]


@pytest.fixture(scope="module")
def scheduler(engine: Engine):  # type: ignore[no-untyped-def]
    sched = Scheduler(engine, slots=4, max_queue=4)
    yield sched
    sched.close()


def job(engine: Engine, text: str, settings: GenerationSettings, **kw: object) -> Job:
    prompt = engine.fit(ask(text), settings.max_tokens)
    return Job(prompt.tokens, settings, prefix=prompt.prefix, **kw)  # type: ignore[arg-type]


def test_greedy_answer_equals_the_engines(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    engine.reset()
    scheduler.clear_cache()  # both evaluate the whole prompt, in the same batches
    expected = engine.generate(ask("What is the capital of France?"), greedy)
    stream = scheduler.submit(job(engine, "What is the capital of France?", greedy))
    assert "".join(stream) == expected
    assert stream.result.finish_reason == "stop"
    assert stream.result.prompt_tokens == len(engine.prompt_tokens(ask("What is the capital of France?")))
    assert stream.result.completion_tokens > 0 and stream.result.time_to_first_token_s > 0


def test_stop_string_ends_the_answer_before_it(
    engine: Engine, scheduler: Scheduler, greedy: GenerationSettings
) -> None:
    engine.reset()
    full = engine.generate(ask("Count from one to ten, in words."), greedy)
    cut = full.index(" ", len(full) // 3)
    stop = full[cut : cut + 4]  # spans more than one token
    stream = scheduler.submit(job(engine, "Count from one to ten, in words.", greedy, stop=[stop]))
    assert "".join(stream) == full[: full.index(stop)]
    assert stream.result.finish_reason == "stop"


def test_stop_matcher_holds_back_a_partial_stop() -> None:
    m = StopMatcher(["END"])
    assert m.feed("abcE") == "abc"
    assert m.feed("N") == ""
    assert m.feed("x") == "ENx"
    assert m.feed("fooEN") == "foo"
    assert m.feed("D tail") == "" and m.stopped


def test_grammar_output_parses_as_json(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    grammar = r"""root ::= "{" ws "\"city\":" ws string ws "}"
string ::= "\"" [A-Za-z ]{1,30} "\""
ws ::= [ ]?"""
    stream = scheduler.submit(
        job(engine, "Which city is the capital of France? Answer in JSON.", greedy, grammar=grammar)
    )
    value = json.loads("".join(stream))
    assert isinstance(value["city"], str)
    assert stream.result.finish_reason == "stop"


def test_any_json_object_grammar_parses(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    stream = scheduler.submit(
        job(engine, "Describe a cat as JSON.", replace(greedy, max_tokens=200), grammar=json_grammar())
    )
    assert isinstance(json.loads("".join(stream)), dict)
    assert stream.result.finish_reason == "stop"


def test_json_schema_grammar_gives_valid_values(
    engine: Engine, scheduler: Scheduler, greedy: GenerationSettings
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    grammar = json_grammar(schema)
    stream = scheduler.submit(job(engine, "The biggest city of France, as JSON.", greedy, grammar=grammar))
    value = json.loads("".join(stream))
    assert set(value) == {"city", "population"}
    assert isinstance(value["city"], str) and isinstance(value["population"], int)


def test_a_schema_the_converter_cannot_use_is_a_clear_error() -> None:
    with pytest.raises(PromptError, match="JSON schema"):
        json_grammar({"$ref": "#/definitions/nowhere"})


def test_a_bad_grammar_is_a_clear_error(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    with pytest.raises(PromptError, match="grammar"):
        scheduler.submit(job(engine, "Hi", greedy, grammar="root ::= ("))


def test_cancel_ends_the_stream(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    stream = scheduler.submit(job(engine, "Write a long story about a dragon.", replace(greedy, max_tokens=300)))
    pieces = [next(stream), next(stream)]
    stream.close()
    pieces += list(stream)
    assert stream.result.finish_reason == "cancelled"
    assert len(pieces) < 300
    after = scheduler.submit(job(engine, "What is the capital of France?", greedy))
    assert "Paris" in "".join(after)


def test_queue_full_is_raised_when_the_queue_is_full(engine: Engine, greedy: GenerationSettings) -> None:
    sched = Scheduler(engine, slots=1, max_queue=1)
    try:
        long = replace(greedy, max_tokens=200)
        first = sched.submit(job(engine, "Write a long story about a dragon.", long))
        next(first)  # running: it holds the only slot
        second = sched.submit(job(engine, "Write a long story about a cat.", long))
        with pytest.raises(QueueFull) as err:
            sched.submit(job(engine, "Hi", greedy))
        assert err.value.retry_after > 0
        first.close()
        second.close()
        list(first), list(second)
    finally:
        sched.close()


def test_an_empty_or_too_long_prompt_is_refused(
    engine: Engine, scheduler: Scheduler, greedy: GenerationSettings
) -> None:
    with pytest.raises(PromptError, match="empty"):
        scheduler.submit(Job([], greedy))
    with pytest.raises(PromptError, match="too long"):
        scheduler.submit(Job([1] * engine.n_ctx, greedy))


def solo(engine: Engine, text: str, settings: GenerationSettings) -> str:
    engine.reset()
    return engine.generate(ask(text), settings)


def test_four_jobs_at_once_each_get_their_own_answer(
    engine: Engine, scheduler: Scheduler, greedy: GenerationSettings
) -> None:
    questions = ["What is the capital of France?", "Name three fruits.", "What is 2 + 2?", "Say hello in Spanish."]
    scheduler.clear_cache()
    expected, reasons = {}, {}
    for q in questions:
        expected[q] = solo(engine, q, greedy)
        assert engine.last_stats is not None
        reasons[q] = engine.last_stats.finish_reason
    answers: dict[str, str] = {}
    streams = {q: scheduler.submit(job(engine, q, greedy)) for q in questions}  # all queued before any is read

    def client(q: str) -> None:
        answers[q] = "".join(streams[q])

    threads = [threading.Thread(target=client, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == expected
    assert {q: s.result.finish_reason for q, s in streams.items()} == reasons


def test_cancel_frees_the_slot_for_a_queued_job(engine: Engine, greedy: GenerationSettings) -> None:
    sched = Scheduler(engine, slots=1, max_queue=2)
    try:
        first = sched.submit(job(engine, "Write a long story about a dragon.", replace(greedy, max_tokens=400)))
        pieces = [next(first), next(first)]
        queued = sched.submit(job(engine, "What is the capital of France?", greedy))
        first.close()
        pieces += list(first)
        assert first.result.finish_reason == "cancelled"
        assert first.result.completion_tokens < 400
        assert "".join(queued) == solo(engine, "What is the capital of France?", greedy)
        assert queued.result.finish_reason == "stop"
    finally:
        sched.close()


def test_a_cancelled_queued_job_never_runs(engine: Engine, greedy: GenerationSettings) -> None:
    sched = Scheduler(engine, slots=1, max_queue=2)
    try:
        first = sched.submit(job(engine, "Write a long story about a dragon.", replace(greedy, max_tokens=400)))
        next(first)
        queued = sched.submit(job(engine, "What is the capital of France?", greedy))
        queued.close()
        assert list(queued) == [] and queued.result.finish_reason == "cancelled"
        assert queued.result.completion_tokens == 0
        first.close()
        list(first)
    finally:
        sched.close()


def test_a_follow_up_reuses_the_cached_prefix(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    scheduler.clear_cache()
    messages = ask("What is the capital of Italy?")
    first = engine.fit(messages, greedy.max_tokens)
    prompt = first.tokens
    answer = "".join(scheduler.submit(Job(prompt, greedy, prefix=first.prefix)))
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And of Spain?"}]
    again = engine.fit(messages, greedy.max_tokens)
    follow = scheduler.submit(Job(again.tokens, greedy, prefix=again.prefix))
    text = "".join(follow)
    assert follow.result.cached_tokens >= len(prompt)
    assert follow.result.prompt_tokens > follow.result.cached_tokens
    # The engine's own prefix reuse evaluates the same pieces: the same answer.
    engine.reset()
    assert engine.generate(messages[:2], greedy) == answer
    assert text == engine.generate(messages, greedy)
    assert engine.last_stats is not None
    assert engine.last_stats.prompt_tokens_evaluated == follow.result.prompt_tokens - follow.result.cached_tokens


def test_a_seed_makes_sampling_repeatable(engine: Engine, scheduler: Scheduler, greedy: GenerationSettings) -> None:
    warm = replace(greedy, temperature=0.9, seed=1234)
    first = "".join(scheduler.submit(job(engine, "Tell me a short poem about rain.", warm)))
    again = "".join(scheduler.submit(job(engine, "Tell me a short poem about rain.", warm)))
    assert first and first == again
    others = {
        "".join(scheduler.submit(job(engine, "Tell me a short poem about rain.", replace(warm, seed=s))))
        for s in (1, 2, 3)
    }
    assert len(others | {first}) > 1  # the seed is what made them equal


def test_jobs_from_several_threads_all_complete(
    engine: Engine, scheduler: Scheduler, greedy: GenerationSettings
) -> None:
    questions = ["What is the capital of France?", "Name three fruits.", "What is 2 + 2?", "Say hello."]
    answers: dict[str, str] = {}

    def client(q: str) -> None:
        answers[q] = "".join(scheduler.submit(job(engine, q, greedy)))

    threads = [threading.Thread(target=client, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) == set(questions) and all(answers.values())
    assert "Paris" in answers[questions[0]]
