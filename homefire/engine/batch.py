"""Several answers at once on one loaded model, for the local API server (issue 19).

`Scheduler.submit(job)` queues a job and returns a `Stream` at once; a decode thread of the
scheduler's own decodes every running job together, one token each per `llama_decode` call
(continuous batching: jobs join and leave between steps), each with its own sampler chain.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as L
import numpy as np

from ..config import GenerationSettings
from ..errors import HomefireError, ModelError, PromptError, one_line
from .engine import KV_TYPES, Engine
from .threads import ThreadTuner

_END = object()  # put on a stream's queue after its last piece


@dataclass
class Job:
    prompt: list[int]  # the whole prompt, chat template applied (Engine.fit(...).tokens)
    settings: GenerationSettings
    stop: list[str] = field(default_factory=list)  # the text before a stop string is yielded, not the stop
    grammar: str | None = None  # GBNF text (llama.cpp's grammar sampler); None: free text
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stops within one decode step
    # How many leading tokens are the system prefix (Engine.fit(...).prefix): evaluated apart from the rest,
    # as the engine does, so that a greedy answer is the engine's to the token. 0: no such split.
    prefix: int = 0


@dataclass
class Result:
    """Filled when the stream ends."""

    finish_reason: str = ""  # "stop" (EOS or stop string) | "length" | "cancelled" | "context"
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache (prefix reuse)
    completion_tokens: int = 0
    time_to_first_token_s: float = 0.0
    decode_tokens_per_s: float = 0.0


class QueueFull(HomefireError):
    """Too many requests are waiting: the server answers 429 with Retry-After."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StopMatcher:
    """Holds back text that may be the start of a stop string, across token boundaries."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text safe to show now; sets `stopped` once a stop string appeared (its text is not shown)."""
        if not self.stops:
            return text
        self.held += text
        cut = min((i for i in (self.held.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.held, self.stopped = self.held[:cut], "", True
            return out
        # Keep the longest tail that is a proper prefix of some stop string.
        keep = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.held)), keep, -1):
                if self.held.endswith(s[:n]):
                    keep = n
                    break
        out = self.held[: len(self.held) - keep]
        self.held = self.held[len(self.held) - keep :]
        return out

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out


def json_grammar(schema: dict[str, Any] | None = None) -> str:
    """GBNF for any JSON object (OpenAI's response_format json_object), or for values of one JSON schema
    (json_schema), made by llama-cpp-python's own converter. With it as `Job.grammar`, even greedy
    decoding can only write JSON that parses; the answer ends when the value is complete (or at max_tokens)."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if schema is None:
        return str(JSON_GBNF)
    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception as exc:  # the converter raises whatever its schema walk meets
        raise PromptError(f"the JSON schema cannot be used: {one_line(str(exc)) or type(exc).__name__}") from exc


class Stream(Iterator[str]):
    """The text pieces of one job, in any thread; `result` is complete once iteration ended."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.result = Result(prompt_tokens=len(job.prompt))
        self.submitted = time.perf_counter()
        self._pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._done = False

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        piece = self._pieces.get()
        if piece is _END:
            self._done = True
            if self._error is not None:
                raise self._error
            raise StopIteration
        assert isinstance(piece, str)
        return piece

    def close(self) -> None:
        """Stop the job (same as job.cancel.set()): its sequence is freed within one decode step."""
        self.job.cancel.set()

    # -- the decode thread's side --

    def _put(self, text: str) -> None:
        if text:
            self._pieces.put(text)

    def _end(self, error: BaseException | None = None) -> None:
        self._error = error
        self._pieces.put(_END)


class _Slot:
    """One llama.cpp sequence: the tokens its KV cache holds, and the job decoding in it (if any)."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.cached: list[int] = []  # tokens in this sequence's KV cache, in order
        self.stream: Stream | None = None
        self.chain: Any = None  # the job's sampler chain (engine._sampler), without its grammar
        self.grammar: Any = None  # the job's grammar sampler, if it has one
        self.pending: list[int] = []  # prompt tokens still to evaluate
        self.next_token = -1  # sampled, to be evaluated in the next step (-1: none)
        self.stops = StopMatcher([])
        self.utf8: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.prefilled_at = 0.0
        self.last_used = 0.0


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Scheduler:
    """Continuous batching: every decode step evaluates one token of each answering job, plus a piece of
    the prompt of jobs that just joined, in one `llama_decode` call on a context of its own.

    The context shares the engine's loaded model (weights are loaded once) and has one KV stream
    per slot (`n_seq_max = slots`, llama.cpp's default non-unified cache), each as large as the
    engine's context, so a job fits exactly when it would fit the engine. Jobs join and leave
    between steps; a finished job's tokens stay cached in its slot, and a new job takes the free
    slot whose cache shares the longest prefix with its prompt, evaluating only the rest.
    """

    def __init__(self, engine: Engine, *, slots: int = 4, max_queue: int = 16) -> None:
        if slots < 1 or max_queue < 0:
            raise HomefireError(f"slots must be at least 1 and max_queue at least 0 (got {slots}, {max_queue})")
        self._engine = engine
        self.slots = slots
        self.max_queue = max_queue
        self.n_ctx = engine.n_ctx  # per job, as the engine's
        cparams = L.llama_context_default_params()
        cparams.n_seq_max = slots
        cparams.kv_unified = False  # a KV stream per sequence: attention never scans other jobs' cells
        cparams.n_ctx = engine.n_ctx * slots
        cparams.n_batch = cparams.n_ubatch = engine.n_batch
        cparams.n_threads = cparams.n_threads_batch = engine.n_threads
        cparams.type_k = cparams.type_v = KV_TYPES[engine.kv_type]
        cparams.flash_attn_type = (
            L.LLAMA_FLASH_ATTN_TYPE_ENABLED if engine.flash_attn else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        cparams.no_perf = True
        self._ctx = L.llama_init_from_model(engine._model, cparams)
        if not self._ctx:
            raise ModelError(
                f"not enough memory for {slots} answers at once with a {engine.n_ctx}-token context: "
                "use fewer slots or a smaller --ctx"
            )
        self._mem = L.llama_get_memory(self._ctx)
        self.n_batch = engine.n_batch
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._threads = engine.n_threads
        # One tuner per batch width: a step's time depends on how many jobs it carries.
        self._tuners: dict[int, ThreadTuner] = {}
        self._tune_from = engine._tuners[0] if engine._tuners is not None else None
        self._slots = [_Slot(i) for i in range(slots)]
        # Candidate arrays for grammar jobs (see _pick), made once: the vocabulary's tokens and one token.
        self._n_vocab = engine.n_vocab
        self._cand = (L.llama_token_data * self._n_vocab)()
        self._cand_np = np.frombuffer(self._cand, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        self._ids = np.arange(self._n_vocab, dtype=np.int32)
        self._one = (L.llama_token_data * 1)()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: list[Stream] = []
        self._closed = False
        self._clear = False
        self._recent_s: list[float] = []  # how long recent jobs took, for Retry-After
        self._thread = threading.Thread(target=self._run, name="homefire-decode", daemon=True)
        self._thread.start()

    @property
    def engine(self) -> Engine:
        return self._engine

    def submit(self, job: Job) -> Stream:
        """Queue a job; never waits for other jobs. Raises QueueFull when `max_queue` jobs wait for a slot,
        PromptError for an empty or too long prompt or a grammar llama.cpp cannot parse."""
        if not job.prompt:
            raise PromptError("nothing to answer: the prompt is empty")
        if len(job.prompt) >= self.n_ctx:
            raise PromptError(
                f"the prompt is too long for the context ({len(job.prompt):,} tokens; "
                f"the context holds {self.n_ctx:,}): shorten it, or use a larger --ctx"
            )
        self._engine.check_grammar(job.grammar)
        stream = Stream(job)
        with self._lock:
            if self._closed:
                raise HomefireError("the scheduler is closed")
            busy = sum(s.stream is not None for s in self._slots)
            if busy >= self.slots and len(self._waiting) >= self.max_queue:
                raise QueueFull(
                    f"{len(self._waiting)} requests are already waiting: try again shortly", self._retry_after()
                )
            self._waiting.append(stream)
            self._wake.notify()
        return stream

    def clear_cache(self) -> None:
        """Forget the prompts idle slots keep for prefix reuse (done before the next job starts)."""
        with self._lock:
            self._clear = True
            self._wake.notify()

    def _retry_after(self) -> float:
        """Seconds until a place in the queue is likely free: recent jobs' mean length times the queue's turns."""
        mean = sum(self._recent_s) / len(self._recent_s) if self._recent_s else 1.0
        return float(min(60.0, max(1.0, mean * (len(self._waiting) + 1) / self.slots)))

    def close(self) -> None:
        """Stop the decode thread (jobs still running or waiting end as cancelled) and free the context."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join()
        if self._ctx:
            L.llama_batch_free(self._batch)
            L.llama_free(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    # -- the decode thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    if not self._step():
                        break
                except Exception as exc:  # a fault of llama.cpp's or ours: the running jobs end with it, not the thread
                    self._fail(ModelError(f"the model failed while answering: {one_line(str(exc))}"))
        finally:
            with self._lock:
                waiting, self._waiting = self._waiting, []
            for slot in self._slots:
                if slot.stream is not None:
                    self._finish(slot, "cancelled")
            for stream in waiting:
                stream.result.finish_reason = "cancelled"
                stream._end()

    def _step(self) -> bool:
        """One decode step; False when the scheduler is closed."""
        with self._lock:
            while not (self._closed or self._clear or self._waiting or any(s.stream is not None for s in self._slots)):
                self._wake.wait()
            if self._closed:
                return False
            if self._clear:
                self._clear = False
                for slot in self._slots:
                    if slot.stream is None and slot.cached:
                        L.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
                        slot.cached = []
            for stream in [s for s in self._waiting if s.job.cancel.is_set()]:
                self._waiting.remove(stream)
                stream.result.finish_reason = "cancelled"
                stream._end()
            while self._waiting and any(s.stream is None for s in self._slots):
                self._start(self._waiting.pop(0))
        for slot in self._slots:
            if slot.stream is not None and slot.stream.job.cancel.is_set():
                self._finish(slot, "cancelled")
        self._decode_step()
        return True

    def _start(self, stream: Stream) -> None:
        """Give a job the free slot whose cache shares the longest prefix with its prompt."""
        prompt = stream.job.prompt
        try:
            grammar = self._engine._grammar_sampler(stream.job.grammar) if stream.job.grammar is not None else None
        except HomefireError as exc:
            stream._end(exc)
            return
        chain = self._engine._sampler(stream.job.settings)
        free = [s for s in self._slots if s.stream is None]
        slot = max(free, key=lambda s: (common_prefix(s.cached, prompt), -s.last_used))
        keep = min(common_prefix(slot.cached, prompt), len(prompt) - 1)  # the last token is always evaluated
        if keep < len(slot.cached):
            if not L.llama_memory_seq_rm(self._mem, slot.seq, keep, -1):
                L.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
                keep = 0
            del slot.cached[keep:]
        slot.stream = stream
        slot.pending = prompt[keep:]
        slot.next_token = -1
        slot.chain, slot.grammar = chain, grammar
        slot.stops = StopMatcher(stream.job.stop)
        slot.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream.result.cached_tokens = keep

    def _decode_step(self) -> None:
        """A piece of one joining job's prompt, then one token of every answering job.

        The prompt piece is a `llama_decode` of its own: llama.cpp splits a batch of several sequences
        into pieces of equal length per sequence, and a token's logits depend on how many tokens of its
        sequence are evaluated with it (measured: the last prompt token alone vs with the one before it
        moves logits by up to 1.3). Alone, a prompt is evaluated exactly as the engine evaluates it, and
        answering tokens (one per sequence) exactly as the engine's; so a greedy answer is the engine's.
        """
        joining = next((s for s in self._slots if s.stream is not None and s.pending), None)
        if joining is not None:
            room = self.n_batch
            boundary = joining.stream.job.prefix if joining.stream is not None else 0
            if len(joining.cached) < boundary:
                room = min(room, boundary - len(joining.cached))  # the engine's batches end at the prefix
            take = joining.pending[:room]
            del joining.pending[: len(take)]
            for i, tok in enumerate(take):
                self._add(i, tok, len(joining.cached), joining.seq, not joining.pending and i == len(take) - 1)
                joining.cached.append(tok)
            if not self._run_batch(len(take), None):
                return
            if not joining.pending:
                self._sample(joining, len(take) - 1)
        rows: list[_Slot] = []
        for slot in self._slots:
            if slot.stream is not None and slot.next_token >= 0:
                self._add(len(rows), slot.next_token, len(slot.cached), slot.seq, True)
                slot.cached.append(slot.next_token)
                slot.next_token = -1
                rows.append(slot)
        if rows and self._run_batch(len(rows), self._tuner(len(rows))):
            for row, slot in enumerate(rows):
                self._sample(slot, row)

    def _run_batch(self, n: int, tuner: ThreadTuner | None) -> bool:
        """Evaluate the batch's first n tokens; False (and every job failed) if llama.cpp refused it."""
        self._batch.n_tokens = n
        started = time.perf_counter()
        rc = L.llama_decode(self._ctx, self._batch)
        if rc != 0:
            self._fail(ModelError(f"llama.cpp failed to evaluate a batch (code {rc}): try a shorter conversation"))
            return False
        if tuner is not None:
            tuner.record(time.perf_counter() - started)
        return True

    def _add(self, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self._batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits

    def _sample(self, slot: _Slot, row: int) -> None:
        stream = slot.stream
        assert stream is not None
        result, settings = stream.result, stream.job.settings
        if not slot.prefilled_at:
            slot.prefilled_at = time.perf_counter()
        if settings.max_tokens <= 0:  # as the engine: the prompt is evaluated, nothing is generated
            self._finish(slot, "length")
            return
        token = self._pick(slot, row)
        if L.llama_vocab_is_eog(self._engine._vocab, token):
            self._finish(slot, "stop")
            return
        result.completion_tokens += 1
        text = slot.stops.feed(slot.utf8.decode(self._engine._piece(token)))
        if text:
            if not result.time_to_first_token_s:
                result.time_to_first_token_s = time.perf_counter() - stream.submitted
            stream._put(text)
        if slot.stops.stopped:
            self._finish(slot, "stop")
        elif len(slot.cached) >= self.n_ctx:
            self._finish(slot, "context")
        elif result.completion_tokens >= settings.max_tokens:
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _pick(self, slot: _Slot, row: int) -> int:
        """The next token of the slot's job from the logits of batch row `row`.

        With a grammar, as llama.cpp's own common sampler: sample without it, and only if the grammar
        rejects that token, sample again with the grammar masking the whole vocabulary first. Checking one
        token is cheap; masking every token of the vocabulary each step is not (about 12 ms a token here).
        Every token taken is one the grammar accepts, so greedy decoding still always writes valid output."""
        if slot.grammar is None:
            return int(L.llama_sampler_sample(slot.chain, self._ctx, row))
        logits = np.ctypeslib.as_array(L.llama_get_logits_ith(self._ctx, row), shape=(self._n_vocab,))
        token = self._apply(logits, slot.chain)
        one = self._one
        one[0] = L.llama_token_data(token, 0.0, 0.0)
        L.llama_sampler_apply(slot.grammar, ctypes.byref(L.llama_token_data_array(one, 1, -1, False)))
        if one[0].logit == -math.inf:
            token = self._apply(logits, slot.grammar, slot.chain)
        L.llama_sampler_accept(slot.grammar, token)
        L.llama_sampler_accept(slot.chain, token)
        return token

    def _apply(self, logits: Any, *samplers: Any) -> int:
        """Run samplers over every token's logit (a fresh candidate array); returns the token selected."""
        self._cand_np["logit"] = logits
        self._cand_np["p"] = 0.0
        self._cand_np["id"] = self._ids
        arr = L.llama_token_data_array(self._cand, self._n_vocab, -1, False)
        for sampler in samplers:
            L.llama_sampler_apply(sampler, ctypes.byref(arr))
        return int(arr.data[arr.selected].id)

    @staticmethod
    def _free_samplers(slot: _Slot) -> None:
        for sampler in (slot.chain, slot.grammar):
            if sampler is not None:
                L.llama_sampler_free(sampler)
        slot.chain = slot.grammar = None

    def _finish(self, slot: _Slot, reason: str) -> None:
        """End the slot's job; its evaluated tokens stay cached for the next job with the same start."""
        stream = slot.stream
        assert stream is not None
        result = stream.result
        result.finish_reason = reason
        if not slot.stops.stopped:
            stream._put(slot.stops.feed(slot.utf8.decode(b"", final=True)))
            stream._put(slot.stops.flush())
        end = time.perf_counter()
        if result.completion_tokens and slot.prefilled_at:
            result.decode_tokens_per_s = result.completion_tokens / max(end - slot.prefilled_at, 1e-9)
        if reason == "cancelled" and slot.pending:
            # Stopped during its prompt: the cache holds a part of it, which is still a valid prefix.
            slot.pending = []
        self._free_samplers(slot)
        slot.stream, slot.next_token, slot.prefilled_at = None, -1, 0.0
        slot.last_used = end
        self._recent_s = [*self._recent_s[-15:], end - stream.submitted]
        stream._end()

    def _fail(self, error: HomefireError) -> None:
        """llama.cpp refused a batch: every running job ends with the error and the caches are cleared."""
        L.llama_memory_clear(self._mem, True)
        for slot in self._slots:
            slot.cached = []
            if slot.stream is not None:
                stream = slot.stream
                self._free_samplers(slot)
                slot.stream, slot.next_token, slot.pending = None, -1, []
                stream._end(error)

    def _tuner(self, width: int) -> ThreadTuner | None:
        """The thread tuner for decoding steps of this many jobs (a step's time depends on its width), with
        its thread count applied; None when the engine's thread count is fixed (engine/threads.py)."""
        base = self._tune_from
        if base is None:
            return None
        tuner = self._tuners.get(width)
        if tuner is None:
            tuner = self._tuners[width] = ThreadTuner(base.most, self._threads, room=base.room)
        if tuner.current != self._threads:
            L.llama_set_n_threads(self._ctx, tuner.current, tuner.current)
            self._threads = tuner.current
        return tuner
