"""The model at work: load a GGUF, build prompts with its chat template, stream answers.

Generation runs on llama.cpp's own sampler chain through the low-level API: no logits are
copied into Python per token, and no per-token Python sampling. The KV cache is reused
across turns: only the part of a prompt that differs from what is already cached is
evaluated, so follow-up questions start fast.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import llama_cpp as L

from ..config import GenerationSettings
from ..errors import Cancelled, ModelError, PromptError
from ..models import store
from ..models.gguf import read_gguf
from .template import ChatTemplate
from .threads import ThreadTuner, choose_threads

Message = dict[str, Any]
Progress = Callable[[int, int], None]

KV_TYPES = {"f16": L.GGML_TYPE_F16, "q8_0": L.GGML_TYPE_Q8_0}

_backend_lock = threading.Lock()
_backend_ready = False


@L.llama_log_callback
def _quiet(level: int, text: bytes, user_data: Any) -> None:
    """llama.cpp writes its logs to stderr by default; a terminal app must not."""


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            if not os.environ.get("HOMEFIRE_LLAMA_LOG"):
                L.llama_log_set(_quiet, ctypes.c_void_p(0))
            L.llama_backend_init()
            _backend_ready = True


class Prompt(NamedTuple):
    tokens: list[int]
    dropped: int  # old messages left out to fit the context
    prefix: int  # how many leading tokens are the system prefix


@dataclass
class TurnStats:
    """What one answer cost."""

    prompt_tokens: int = 0  # the whole prompt
    prompt_tokens_evaluated: int = 0  # the part not already in the KV cache
    completion_tokens: int = 0
    time_to_first_token_s: float = 0.0
    prefill_tokens_per_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    total_s: float = 0.0
    finish_reason: str = ""  # stop, length, context, cancelled
    dropped_messages: int = 0  # history trimmed to fit the context

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class NamedModel(Protocol):
    @property
    def name(self) -> str: ...


class ChatEngine(Protocol):
    """What Assistant needs of an engine: the real one below, or a scripted one in UI tests (tests/helpers.py).

    Cartridges restore llama.cpp KV state and so need the real Engine itself; nothing else does."""

    last_stats: TurnStats | None  # the latest answer's, set when stream() ends

    @property
    def model(self) -> NamedModel: ...

    def fit(self, messages: list[Message], max_tokens: int) -> object:
        """Raise PromptError when these messages and an answer of max_tokens cannot fit the context."""
        ...

    def stream(
        self, messages: list[Message], settings: GenerationSettings | None = None, cancel: threading.Event | None = None
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


class Engine:
    """One loaded model with one context. Not thread-safe: one answer at a time (a lock enforces it)."""

    def __init__(
        self,
        model: store.Model | str | Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        verify: bool = True,
        kv_type: str = "f16",
        reserve_cores: int = 0,
    ):
        """n_threads None: chosen from the free cores (less `reserve_cores`, kept for a UI) and adapted
        during each answer (engine/threads.py); a number is used as given."""
        if not isinstance(model, store.Model):
            model = store.resolve(str(model) if model is not None else None)
        self.model = model
        info = read_gguf(model.path)  # a clear message for a missing, foreign or truncated file
        if verify and model.sha256:
            store.verify(model)
        self.info = info
        choice = choose_threads(n_threads, reserve_cores)
        self.n_threads = choice.start  # the count the next decode step uses
        self.max_threads = choice.most  # the most it may adapt up to (all usable cores less the reserve)
        # One tuner for single-token decode steps, one for prompt batches: they differ in how much
        # work there is between barriers, so the best count can differ too.
        self._tuners: tuple[ThreadTuner, ThreadTuner] | None = None
        if choice.adaptive:
            self._tuners = (
                ThreadTuner(choice.most, choice.start, room=choice.room),
                ThreadTuner(choice.most, choice.start, room=choice.room),
            )
        _init_backend()
        mparams = L.llama_model_default_params()
        self._model = L.llama_model_load_from_file(str(model.path).encode(), mparams)
        if not self._model:
            raise ModelError(
                f"llama.cpp could not load {model.path} (architecture '{info.architecture}'): "
                "the file is damaged or needs a newer homefire"
            )
        train_ctx = L.llama_model_n_ctx_train(self._model)
        cparams = L.llama_context_default_params()
        cparams.n_ctx = min(n_ctx, train_ctx) if train_ctx > 0 else n_ctx
        cparams.n_batch = cparams.n_ubatch = min(n_batch, cparams.n_ctx)
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = choice.start
        self._threads_set = (choice.start, choice.start)  # (decode, batch) as llama.cpp has them
        if kv_type not in KV_TYPES:
            raise ModelError(f"unknown KV cache type '{kv_type}': use one of {', '.join(KV_TYPES)}")
        self.kv_type = kv_type
        # A quantized V cache needs flash attention in llama.cpp; f16 runs without it (faster here).
        self.flash_attn = kv_type != "f16"
        cparams.type_k = cparams.type_v = KV_TYPES[kv_type]
        cparams.flash_attn_type = (
            L.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        cparams.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            L.llama_model_free(self._model)
            raise ModelError(f"not enough memory for a {n_ctx}-token context with {model.name}: try --ctx 2048")
        self.n_ctx = L.llama_n_ctx(self._ctx)
        self.n_batch = cparams.n_batch
        self._vocab = L.llama_model_get_vocab(self._model)
        self.n_vocab = L.llama_vocab_n_tokens(self._vocab)
        self.n_params = int(L.llama_model_n_params(self._model))
        self.default_temperature = 0.0 if self.n_params < 1_000_000_000 else 0.7
        self._mem = L.llama_get_memory(self._ctx)
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._cached: list[int] = []  # tokens now in the KV cache, in order
        self._dirty = False  # a decode was interrupted: the cache no longer matches _cached
        self._lock = threading.Lock()
        self._add_bos = bool(L.llama_vocab_get_add_bos(self._vocab))
        self._bos = L.llama_vocab_bos(self._vocab)
        self.template = ChatTemplate(
            info.chat_template, self._token_text(self._bos), self._token_text(L.llama_vocab_eos(self._vocab))
        )
        self.last_stats: TurnStats | None = None

    # -- tokens -------------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._piece(token, special=True).decode("utf-8", errors="replace")

    def _piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def tokenize(self, text: str, special: bool = True, add_bos: bool = False) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 8
        arr = (L.llama_token * n_max)()
        n = L.llama_tokenize(self._vocab, data, len(data), arr, n_max, add_bos, special)
        if n < 0:
            arr = (L.llama_token * -n)()
            n = L.llama_tokenize(self._vocab, data, len(data), arr, -n, add_bos, special)
        return list(arr[:n])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self._piece(t) for t in tokens).decode("utf-8", errors="replace")

    # -- prompts ------------------------------------------------------------------------------

    def system_prefix(self, system: Message) -> str | None:
        """The template's text for a lone system message, if the template renders it as a prefix
        of every conversation that starts with it (true of ChatML, Llama 3 and most others)."""
        prefix = self.template.render([system], add_generation_prompt=False)
        probe = self.template.render([system, {"role": "user", "content": "?"}])
        return prefix if prefix and probe.startswith(prefix) else None

    def _with_bos(self, tokens: list[int]) -> list[int]:
        if self._add_bos and self._bos >= 0 and (not tokens or tokens[0] != self._bos):
            tokens.insert(0, self._bos)
        return tokens

    def prefix_tokens(self, system: Message) -> list[int] | None:
        """The tokens every prompt starting with this system message begins with (see `prompt_tokens`)."""
        prefix = self.system_prefix(system)
        return self._with_bos(self.tokenize(prefix)) if prefix else None

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        return self._prompt(messages)[0]

    def _prompt(self, messages: list[Message]) -> tuple[list[int], int]:
        """The prompt as tokens, and how many of them are the system prefix.

        A leading system message is tokenized on its own, so its tokens are the same whatever
        follows, and it is evaluated as its own batches: its KV cache (or a saved cartridge of
        it) can be reused, and a restored run computes exactly what a cold run computes.
        """
        text = self.template.render(messages)
        prefix = self.system_prefix(messages[0]) if messages and messages[0]["role"] == "system" else None
        if prefix and text.startswith(prefix):
            head = self._with_bos(self.tokenize(prefix))
            return head + self.tokenize(text[len(prefix) :]), len(head)
        return self._with_bos(self.tokenize(text)), 0

    def fit(self, messages: list[Message], max_tokens: int) -> Prompt:
        """Prompt tokens for the newest messages that fit, and how many old messages were dropped.

        System messages are never dropped; the oldest other messages go first. A last message
        that cannot fit even alone is an error, not a silent truncation.
        """
        if not messages:
            raise PromptError("nothing to answer: the conversation is empty")
        reserve = max(16, min(max_tokens, self.n_ctx // 4))
        budget = self.n_ctx - reserve
        system = [m for m in messages[:-1] if m["role"] == "system"]
        rest = [m for m in messages[:-1] if m["role"] != "system"]
        dropped = 0
        while True:
            tokens, prefix = self._prompt(system + rest + messages[-1:])
            if len(tokens) <= budget:
                return Prompt(tokens, dropped, prefix)
            if not rest:
                break
            # Drop a whole exchange at a time so the history never starts with an answer.
            cut = 2 if len(rest) > 1 and rest[0]["role"] == "user" and rest[1]["role"] == "assistant" else 1
            rest, dropped = rest[cut:], dropped + cut
        alone = len(self.tokenize(str(messages[-1].get("content", "")), special=False))
        raise PromptError(
            f"the message is too long for the context ({alone:,} tokens; the context holds {self.n_ctx:,} "
            f"with {reserve} kept for the answer): shorten it, or use a larger --ctx"
        )

    # -- decoding -----------------------------------------------------------------------------

    def _decode(
        self, tokens: list[int], cancel: threading.Event | None = None, progress: Progress | None = None
    ) -> None:
        """Evaluate tokens after what is cached, in batches; logits only for the last one."""
        for start in range(0, len(tokens), self.n_batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("stopped")
            chunk = tokens[start : start + self.n_batch]
            b = self._batch
            b.n_tokens = len(chunk)
            base = len(self._cached)
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = base + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = 0
            b.logits[len(chunk) - 1] = 1
            self._dirty = True
            started = time.perf_counter()
            rc = L.llama_decode(self._ctx, b)
            self._tune(len(chunk), time.perf_counter() - started)
            if rc != 0:
                self.reset()
                raise ModelError(f"llama.cpp failed to evaluate the prompt (code {rc}): try a shorter conversation")
            self._cached.extend(chunk)
            self._dirty = False
            if progress is not None:
                progress(start + len(chunk), len(tokens))

    def _tune(self, n_tokens: int, seconds: float) -> None:
        """Let the tuners see one decode step, and give llama.cpp the thread counts they choose."""
        if self._tuners is None:
            return
        decode, batch = self._tuners
        if n_tokens == 1:
            decode.record(seconds)
        elif n_tokens == self.n_batch:  # only full batches compare: time per token depends on the size
            batch.record(seconds / n_tokens)
        if not batch.estimate:
            batch.current = decode.current  # until long prompts have been timed, what decoding found
        if (decode.current, batch.current) != self._threads_set:
            L.llama_set_n_threads(self._ctx, decode.current, batch.current)
            self._threads_set = (decode.current, batch.current)
        self.n_threads = decode.current

    def reset(self) -> None:
        """Forget the KV cache."""
        L.llama_memory_clear(self._mem, True)
        self._cached = []
        self._dirty = False

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values are in the KV cache now."""
        return [] if self._dirty else list(self._cached)

    def prefill(
        self, tokens: list[int], cancel: threading.Event | None = None, progress: Progress | None = None
    ) -> int:
        """Make the KV cache hold exactly `tokens` (see `_prefill`), under the engine's lock."""
        with self._busy():
            return self._prefill(tokens, cancel, progress)

    def save_state(self, path: Path) -> int:
        """Save the KV cache and its tokens (sequence 0) to `path`; returns the bytes written."""
        with self._busy():
            if self._dirty or not self._cached:
                raise ModelError("nothing to save: the KV cache is empty")
            arr = (L.llama_token * len(self._cached))(*self._cached)
            written = L.llama_state_seq_save_file(self._ctx, str(path).encode(), 0, arr, len(self._cached))
            if written == 0:
                raise ModelError(f"llama.cpp could not write {path}: check the disk has room")
            return int(written)

    def state_size(self) -> int:
        """Bytes a saved state of the KV cache would take now."""
        return int(L.llama_state_seq_get_size(self._ctx, 0))

    def load_state(self, path: Path) -> list[int]:
        """Replace the KV cache with a saved one; returns its tokens. The cache is empty if it fails."""
        with self._busy():
            self.reset()
            arr = (L.llama_token * self.n_ctx)()
            count = ctypes.c_size_t(0)
            read = L.llama_state_seq_load_file(self._ctx, str(path).encode(), 0, arr, self.n_ctx, ctypes.byref(count))
            if read == 0:
                self.reset()
                raise ModelError(f"llama.cpp could not restore {path}: the file is damaged or was made differently")
            self._cached = list(arr[: count.value])
            return list(self._cached)

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise ModelError("the model is busy with another answer: wait for it or stop it first")
        try:
            yield
        finally:
            self._lock.release()

    def _prefill(
        self,
        tokens: list[int],
        cancel: threading.Event | None,
        progress: Progress | None = None,
        boundary: int = 0,
    ) -> int:
        """Make the KV cache hold exactly `tokens`, reusing the longest cached prefix; returns tokens evaluated.

        Tokens before `boundary` (the system prefix) and after it are evaluated as separate batches.
        """
        if self._dirty:
            self.reset()
        keep = 0
        for a, b in zip(self._cached, tokens, strict=False):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)  # the last token is always evaluated, so its logits are fresh
        if keep < len(self._cached):
            if not L.llama_memory_seq_rm(self._mem, 0, keep, -1):
                self.reset()
                keep = 0
            else:
                del self._cached[keep:]
        if keep < boundary < len(tokens):
            self._decode(tokens[keep:boundary], cancel, progress)
            self._decode(tokens[boundary:], cancel)
        else:
            self._decode(tokens[keep:], cancel, progress)
        return len(tokens) - keep

    def _sampler(self, s: GenerationSettings) -> Any:
        """llama.cpp's native sampler chain. top-k runs first so the repeat penalty scans 40
        candidates instead of the whole vocabulary (llama.cpp's own advice); penalties only
        ever lower a logit, so for greedy decoding this changes the pick only if all 40 best
        tokens are penalised below the 41st."""
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        add = L.llama_sampler_chain_add
        add(chain, L.llama_sampler_init_top_k(s.top_k if s.top_k > 0 else self.n_vocab))
        if s.repeat_penalty != 1.0 and s.repeat_last_n != 0:
            add(chain, L.llama_sampler_init_penalties(self.n_vocab, s.repeat_last_n, s.repeat_penalty, 0.0, 0.0))
        temperature = self.default_temperature if s.temperature is None else s.temperature
        if temperature <= 0:
            add(chain, L.llama_sampler_init_greedy())
            return chain
        add(chain, L.llama_sampler_init_top_p(s.top_p, 1))
        add(chain, L.llama_sampler_init_min_p(s.min_p, 1))
        add(chain, L.llama_sampler_init_temp(temperature))
        seed = s.seed if s.seed is not None else L.LLAMA_DEFAULT_SEED
        add(chain, L.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _grammar_sampler(self, grammar: str) -> Any:
        """llama.cpp's grammar sampler for this GBNF text (PromptError if it does not parse)."""
        g = L.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        if not g:
            raise PromptError("the grammar is not valid GBNF (llama.cpp could not parse it)")
        return g

    def check_grammar(self, grammar: str | None) -> None:
        """Raise PromptError if llama.cpp cannot parse this GBNF grammar."""
        if grammar is not None:
            L.llama_sampler_free(self._grammar_sampler(grammar))

    def stream(
        self,
        messages: list[Message],
        settings: GenerationSettings | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated. `last_stats` is set when it ends.

        Setting `cancel` stops at the next token (finish_reason "cancelled"); what was
        generated so far has already been yielded.
        """
        with self._busy():
            yield from self._stream(messages, settings or GenerationSettings(), cancel)

    def _stream(self, messages: list[Message], s: GenerationSettings, cancel: threading.Event | None) -> Iterator[str]:
        stats = TurnStats()
        self.last_stats = stats
        chain = None
        t0 = time.perf_counter()
        try:
            prompt = self.fit(messages, s.max_tokens)
            stats.prompt_tokens, stats.dropped_messages = len(prompt.tokens), prompt.dropped
            try:
                stats.prompt_tokens_evaluated = self._prefill(prompt.tokens, cancel, boundary=prompt.prefix)
            except Cancelled:
                stats.finish_reason = "cancelled"
                return
            t_prefill = time.perf_counter()
            if stats.prompt_tokens_evaluated:
                stats.prefill_tokens_per_s = stats.prompt_tokens_evaluated / max(t_prefill - t0, 1e-9)
            chain = self._sampler(s)
            utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stats.finish_reason = "length"
            first = None
            while stats.completion_tokens < s.max_tokens:
                if cancel is not None and cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                token = L.llama_sampler_sample(chain, self._ctx, -1)
                if L.llama_vocab_is_eog(self._vocab, token):
                    stats.finish_reason = "stop"
                    break
                stats.completion_tokens += 1
                text = utf8.decode(self._piece(token))
                if len(self._cached) >= self.n_ctx:
                    stats.finish_reason = "context"
                    if text:
                        yield text
                    break
                if text:
                    if first is None:
                        first = time.perf_counter()
                        stats.time_to_first_token_s = first - t0
                    yield text
                if stats.completion_tokens < s.max_tokens:
                    self._decode([token])
            tail = utf8.decode(b"", final=True)
            if tail:
                yield tail
            end = time.perf_counter()
            stats.total_s = end - t0
            if stats.completion_tokens > 0:
                stats.decode_tokens_per_s = stats.completion_tokens / max(end - t_prefill, 1e-9)
        finally:
            stats.total_s = stats.total_s or time.perf_counter() - t0
            if chain is not None:
                L.llama_sampler_free(chain)

    def generate(self, messages: list[Message], settings: GenerationSettings | None = None) -> str:
        return "".join(self.stream(messages, settings))

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            L.llama_batch_free(self._batch)
            L.llama_free(self._ctx)
            L.llama_model_free(self._model)
            self._ctx = self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass
