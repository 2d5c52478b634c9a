"""Several answers at once on one loaded model, for the local API server (issue 19).

`Scheduler.submit(job)` queues a job and returns a `Stream` at once; a decode thread runs the
jobs. This first version runs one job at a time on the engine (the interface the server codes
against, /work/notes/api-interface.md); continuous batching replaces its inside.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..config import GenerationSettings
from ..errors import HomefireError, PromptError
from .engine import Engine, Prompt

_END = object()  # put on a stream's queue after its last piece


@dataclass
class Job:
    prompt: list[int]  # the whole prompt, chat template applied (Engine.fit(...).tokens)
    settings: GenerationSettings
    stop: list[str] = field(default_factory=list)  # the text before a stop string is yielded, not the stop
    grammar: str | None = None  # GBNF text (llama.cpp's grammar sampler); None: free text
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stops within one decode step


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


class Stream(Iterator[str]):
    """The text pieces of one job, in any thread; `result` is complete once iteration ended."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.result = Result(prompt_tokens=len(job.prompt))
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


class Scheduler:
    """Runs submitted jobs on one engine's model in a decode thread of its own."""

    def __init__(self, engine: Engine, *, slots: int = 4, max_queue: int = 16) -> None:
        if slots < 1 or max_queue < 0:
            raise HomefireError(f"slots must be at least 1 and max_queue at least 0 (got {slots}, {max_queue})")
        self._engine = engine
        self.slots = slots
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._waiting: list[Stream] = []
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="homefire-decode", daemon=True)
        self._thread.start()

    @property
    def engine(self) -> Engine:
        return self._engine

    def submit(self, job: Job) -> Stream:
        """Queue a job; never waits for other jobs. Raises QueueFull when `max_queue` jobs are waiting."""
        if not job.prompt:
            raise PromptError("nothing to answer: the prompt is empty")
        if len(job.prompt) >= self._engine.n_ctx:
            raise PromptError(
                f"the prompt is too long for the context ({len(job.prompt):,} tokens; "
                f"the context holds {self._engine.n_ctx:,}): shorten it, or use a larger --ctx"
            )
        # A grammar that does not parse is the caller's error, told now rather than mid-stream.
        self._engine.check_grammar(job.grammar)
        stream = Stream(job)
        with self._lock:
            if self._closed:
                raise HomefireError("the scheduler is closed")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting: try again shortly", 1.0)
            self._waiting.append(stream)
            self._wake.notify()
        return stream

    def clear_cache(self) -> None:
        """Forget the prompts kept for prefix reuse."""
        with self._engine._lock:
            self._engine.reset()

    def close(self) -> None:
        """Stop the decode thread; jobs still waiting end as cancelled."""
        with self._lock:
            self._closed = True
            for stream in self._waiting:
                stream.job.cancel.set()
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed and not self._waiting:
                    return
                stream = self._waiting.pop(0)
            self._serve(stream)

    def _serve(self, stream: Stream) -> None:
        job, result = stream.job, stream.result
        stops = StopMatcher(job.stop)
        try:
            if job.cancel.is_set():
                result.finish_reason = "cancelled"
                stream._end()
                return
            pieces = self._engine.stream_tokens(Prompt(job.prompt, 0, 0), job.settings, job.cancel, job.grammar)
            for piece in pieces:
                stream._put(stops.feed(piece))
                if stops.stopped:
                    pieces.close()  # type: ignore[attr-defined]
                    break
            stream._put(stops.flush())
            stats = self._engine.last_stats
            if stats is not None:
                result.finish_reason = "stop" if stops.stopped else stats.finish_reason
                result.cached_tokens = stats.prompt_tokens - stats.prompt_tokens_evaluated
                result.completion_tokens = stats.completion_tokens
                result.time_to_first_token_s = stats.time_to_first_token_s
                result.decode_tokens_per_s = stats.decode_tokens_per_s
            stream._end()
        except Exception as exc:  # the job's own failure (a bad grammar): its reader gets it
            stream._end(exc)
