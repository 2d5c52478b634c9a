"""What the local API serves, without HTTP: one loaded model and its scheduler, the guard, memory, embeddings.

Everything is opened through session.py like every other front end (options, then saved settings, then
defaults; the guard, the engine, the memory). The HTTP side (api.py) turns a request of either dialect into
a `ChatRequest` and gets a `Reply` back; this module never sees a socket.

Concurrency: requests on the loaded model share it through the batching scheduler (engine/batch.py). Two
things need the model alone and wait for the requests in flight to end: a request for another installed
model (the swap), and a cartridge request (cartridges restore a saved KV state into the engine's own
context, exactly as `ask --cartridge` does, so they run there one at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .. import session
from ..assistant import Assistant, refusal
from ..config import GenerationSettings
from ..engine import Message
from ..engine import cartridge as cartridges
from ..engine.batch import Job, QueueFull, Result, Scheduler
from ..errors import CartridgeError, HomefireError, ModelError, PromptError

if TYPE_CHECKING:
    from ..engine import Engine
    from ..guard import Guard, Verdict
    from ..memory import Memory

log = logging.getLogger("homefire.api")

__all__ = ["Backend", "ChatRequest", "ModelNotFound", "QueueFull", "Reply", "RequestError"]


class RequestError(HomefireError):
    """A request the API refuses (HTTP 400 unless `status` says otherwise); `param` and `code` name what."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param, self.code, self.status = param, code, status


class ModelNotFound(RequestError):
    def __init__(self, name: str, installed: list[str]) -> None:
        super().__init__(
            f"The model '{name}' does not exist here: installed are {', '.join(installed) or 'none'} "
            "(a cartridge is asked for as MODEL+CARTRIDGE)",
            param="model",
            code="model_not_found",
            status=404,
        )


@dataclass
class ChatRequest:
    """One chat request, whichever dialect it came in."""

    messages: list[Message]  # role and text only, system/user/assistant
    model: str | None = None  # None: the loaded model
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    cartridges: list[str] = field(default_factory=list)
    truncate: bool = False  # drop the oldest messages to fit (Ollama's way) instead of refusing


@dataclass
class Reply:
    """The answer to a ChatRequest: iterate `pieces` (async), then read `result`."""

    model: str
    pieces: AsyncIterator[str]
    result: Result
    verdict: dict[str, Any] | None = None
    blocked: bool = False
    cartridges: list[str] = field(default_factory=list)
    dropped_messages: int = 0
    started: float = field(default_factory=time.perf_counter)
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Stop generating (if it still is) and give the model back: always called, however the request ended."""
        await self.pieces.aclose()  # type: ignore[attr-defined]
        while self.cleanup:
            await self.cleanup.pop(0)()

    @property
    def finish_reason(self) -> str:
        if self.blocked:
            return "content_filter"
        reason = self.result.finish_reason
        return "length" if reason == "context" else reason or "stop"

    def homefire(self) -> dict[str, Any]:
        """The extra `homefire` field of a response: the guard's verdict, cartridges, cache use."""
        out: dict[str, Any] = {"verdict": self.verdict, "blocked": self.blocked}
        if self.cartridges:
            out["cartridges"] = self.cartridges
        if self.dropped_messages:
            out["dropped_messages"] = self.dropped_messages
        if not self.blocked:
            out["cached_tokens"] = self.result.cached_tokens
            out["time_to_first_token_s"] = round(self.result.time_to_first_token_s, 4)
        return out


class GuardCache:
    """The guard's verdicts by text: clients resend the whole history each turn, so each text is checked once."""

    def __init__(self, guard: Guard | None, size: int = 4096) -> None:
        self.guard = guard
        self.size = size
        self._verdicts: OrderedDict[str, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, text: str) -> Verdict | None:
        if self.guard is None:
            return None
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            hit = self._verdicts.get(key)
            if hit is not None:
                self._verdicts.move_to_end(key)
                return hit
        verdict = self.guard.check(text)
        with self._lock:
            self._verdicts[key] = verdict
            while len(self._verdicts) > self.size:
                self._verdicts.popitem(last=False)
        return verdict

    def check_all(self, messages: list[Message]) -> Verdict | None:
        """The verdict on the user's messages: the first blocked one's, else the newest one's."""
        last = None
        for m in messages:
            if m["role"] == "user":
                last = self.check(m["content"])
                if last is not None and not last.allowed:
                    return last
        return last


class Loaded:
    """The model in memory: its engine and the scheduler that shares it among requests."""

    def __init__(self, plan: session.Plan, slots: int, max_queue: int) -> None:
        self.engine: Engine = session.open_engine(plan)
        self.name = self.engine.model.name
        self.scheduler = Scheduler(self.engine, slots=slots, max_queue=max_queue)

    def close(self) -> None:
        try:
            self.scheduler.close()
        finally:
            self.engine.close()


class Backend:
    """The API's model server. Built from a session Plan; `open()` loads the model (slow: call it in a thread)."""

    def __init__(
        self,
        plan: session.Plan,
        *,
        slots: int = 4,
        max_queue: int = 16,
        memory: bool = False,
    ) -> None:
        self.plan = plan
        self.slots, self.max_queue = slots, max_queue
        self.guard = GuardCache(None)
        self.loaded: Loaded | None = None
        self.use_memory = memory
        self.memory: Memory | None = None
        self._memory_thread = ThreadPoolExecutor(1, thread_name_prefix="homefire-memory")  # SQLite: one thread
        self._encoder_thread = ThreadPoolExecutor(1, thread_name_prefix="homefire-embed")
        self._encoder: Any = None
        self._conversations: OrderedDict[str, int] = OrderedDict()  # history digest -> saved conversation id
        # Who holds the model: `users` requests share it; `exclusive` is a swap or a cartridge answer.
        self._cond: asyncio.Condition | None = None
        self._users = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self.active = 0  # streams being generated now (the status endpoint; tests wait on it)

    # -- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Load the guard, then the model, then (with --memory) the memory, all through session.py."""
        self.guard = GuardCache(session.load_guard(self.plan.guard))
        self.loaded = Loaded(self.plan, self.slots, self.max_queue)
        if self.use_memory:
            # Opened on its own thread, where every later use of it runs (SQLite connections stay on theirs).
            self.memory = self._memory_thread.submit(session.open_memory, None, self.guard.guard).result()

    def close(self) -> None:
        if self.loaded is not None:
            self.loaded.close()
            self.loaded = None
        if self.memory is not None:
            self._memory_thread.submit(self.memory.close).result()
            self.memory = None
        self._memory_thread.shutdown(wait=True)
        self._encoder_thread.shutdown(wait=True)

    @property
    def model_name(self) -> str:
        return self.loaded.name if self.loaded is not None else "none"

    # -- what is installed ------------------------------------------------------------------------

    @staticmethod
    def installed() -> list[Any]:
        from ..models import store

        return store.installed()

    def model_ids(self) -> list[tuple[str, Any, str | None]]:
        """(id, model, cartridge) of everything a client may ask for: each model, and model+cartridge."""
        models = self.installed()
        out: list[tuple[str, Any, str | None]] = [(m.name, m, None) for m in models]
        by_name = {m.name: m for m in models}
        for cart in cartridges.all_cartridges():
            owner = by_name.get(cart.manifest["model"]["name"])
            if owner is not None and cartridges.status(cart) == "ok":
                out.append((f"{owner.name}+{cart.name}", owner, cart.name))
        return out

    def split_model(self, requested: str | None, extra: list[str]) -> tuple[str, list[str]]:
        """The model name and cartridges a request asks for ("smollm2-135m+manual" is both); a 404 if unknown."""
        wanted = (requested or "").strip()
        names = [m.name for m in self.installed()]
        carts = list(extra)
        if "+" in wanted:
            wanted, *more = wanted.split("+")
            carts = [c for c in more if c] + carts
        if wanted.endswith(":latest"):  # Ollama programs add the tag
            wanted = wanted[: -len(":latest")]
        if not wanted or wanted in ("default", self.model_name):
            wanted = self.model_name
        elif wanted.lower() not in names:
            raise ModelNotFound(requested or "", names)
        for name in carts:
            try:
                cartridges.load(name)
            except CartridgeError as exc:
                raise RequestError(str(exc), param="cartridges", code="cartridge_not_found", status=404) from None
        return wanted.lower(), carts

    # -- the model, shared or alone -----------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    @contextlib.asynccontextmanager
    async def using(self, name: str, alone: bool = False) -> AsyncIterator[Loaded]:
        """The loaded model `name`, shared with other requests, or `alone`; swaps to it when another is loaded.

        A swap or a lone use waits for the requests in flight; requests that arrive meanwhile wait behind it."""
        cond = self._condition()
        async with cond:
            while True:
                right = self.loaded is not None and self.loaded.name == name
                if right and not alone and not self._exclusive and not self._waiting_exclusive:
                    self._users += 1
                    shared = True
                    break
                if (not right or alone) and not self._exclusive and self._users == 0:
                    self._exclusive = True
                    shared = False
                    break
                lone = not right or alone
                self._waiting_exclusive += lone
                try:
                    await cond.wait()
                finally:
                    self._waiting_exclusive -= lone
        try:
            if not shared and (self.loaded is None or self.loaded.name != name):
                await asyncio.get_running_loop().run_in_executor(None, self._swap, name)
                if not alone:  # swapped in: now shared with the requests for it that waited
                    async with cond:
                        self._exclusive, self._users, shared = False, self._users + 1, True
                        cond.notify_all()
            assert self.loaded is not None
            yield self.loaded
        finally:
            async with cond:
                if shared:
                    self._users -= 1
                else:
                    self._exclusive = False
                cond.notify_all()

    def _swap(self, name: str) -> None:
        started = time.monotonic()
        old = self.model_name
        if self.loaded is not None:
            self.loaded.close()
            self.loaded = None
        self.loaded = Loaded(self.plan.but(model=name), self.slots, self.max_queue)
        log.warning("homefire: swapped model %s -> %s in %.1fs", old, name, time.monotonic() - started)

    # -- guard ----------------------------------------------------------------------------------------

    async def check(self, messages: list[Message]) -> Verdict | None:
        return await asyncio.get_running_loop().run_in_executor(None, self.guard.check_all, messages)

    # -- chat -----------------------------------------------------------------------------------------

    def with_system(self, messages: list[Message]) -> list[Message]:
        """The request's messages, with the server's system prompt in front when the client sent none."""
        if any(m["role"] == "system" for m in messages) or not self.plan.system_prompt:
            return list(messages)
        return [{"role": "system", "content": self.plan.system_prompt}, *messages]

    async def chat(self, req: ChatRequest, disconnected: Callable[[], bool]) -> Reply:
        """Answer a request: guard, then the model (shared, or alone for cartridges). Raises RequestError,
        ModelNotFound or QueueFull before anything is generated."""
        if not req.messages or req.messages[-1]["role"] != "user":
            raise RequestError("the last message must be the user's question", param="messages")
        name, carts = self.split_model(req.model, req.cartridges)
        verdict = await self.check(req.messages)
        if verdict is not None and not verdict.allowed:
            return self._refused(name, verdict)
        vd = verdict.as_dict() if verdict is not None else None
        if carts:
            if req.grammar is not None:
                raise RequestError("response_format cannot be combined with cartridges yet", param="response_format")
            return await self._cartridge_chat(req, name, carts, vd, disconnected)
        return await self._shared_chat(req, name, vd, disconnected)

    def _refused(self, name: str, verdict: Verdict) -> Reply:
        text = refusal(verdict)

        async def pieces() -> AsyncIterator[str]:
            yield text

        return Reply(name, pieces(), Result(finish_reason="content_filter"), verdict.as_dict(), blocked=True)

    async def _shared_chat(
        self, req: ChatRequest, name: str, verdict: dict[str, Any] | None, disconnected: Callable[[], bool]
    ) -> Reply:
        loop = asyncio.get_running_loop()
        lease = self.using(name)
        loaded = await lease.__aenter__()
        try:
            messages = self.with_system(req.messages)
            saved = await self._remember_question(req.messages, messages, verdict)
            prompt = await loop.run_in_executor(None, self._fit, loaded.engine, messages, req)
            job = Job(prompt.tokens, req.settings, stop=list(req.stop), grammar=req.grammar, prefix=prompt.prefix)
            stream = loaded.scheduler.submit(job)  # QueueFull: 429
        except BaseException:
            await lease.__aexit__(None, None, None)
            raise
        reply = Reply(loaded.name, _empty(), stream.result, verdict, dropped_messages=prompt.dropped)
        text: list[str] = []

        async def pieces() -> AsyncIterator[str]:
            async for piece in self._relay(iter(stream), stream.close, disconnected):
                text.append(piece)
                yield piece

        async def release() -> None:
            stream.close()
            await lease.__aexit__(None, None, None)

        async def remember() -> None:
            if saved is not None:
                await self._remember_answer(saved, req.messages, "".join(text), stream.result)

        reply.pieces = pieces()
        reply.cleanup += [release, remember]
        return reply

    @staticmethod
    def _fit(engine: Engine, messages: list[Message], req: ChatRequest) -> Any:
        try:
            prompt = engine.fit(messages, req.settings.max_tokens)
        except PromptError as exc:
            raise RequestError(str(exc), param="messages", code="context_length_exceeded") from None
        if prompt.dropped and not req.truncate:
            raise RequestError(
                f"the conversation is longer than the context ({engine.n_ctx:,} tokens, with room kept for the "
                f"answer): send fewer or shorter messages, or a smaller max_tokens ({prompt.dropped} of the "
                "oldest messages would have to go)",
                param="messages",
                code="context_length_exceeded",
            )
        return prompt

    async def _cartridge_chat(
        self,
        req: ChatRequest,
        name: str,
        carts: list[str],
        verdict: dict[str, Any] | None,
        disconnected: Callable[[], bool],
    ) -> Reply:
        """Cartridges restored into the engine's own context, as `ask --cartridge` does, with the model alone."""
        loop = asyncio.get_running_loop()
        lease = self.using(name, alone=True)
        loaded = await lease.__aenter__()
        result = Result()
        cancel = threading.Event()
        try:
            engine = loaded.engine
            assistant = Assistant(engine, system_prompt=None, settings=req.settings)
            try:
                await loop.run_in_executor(None, assistant.attach, carts)
            except CartridgeError as exc:
                raise RequestError(str(exc), param="cartridges", code="cartridge_unusable") from None
            history = [m for m in req.messages[:-1] if m["role"] in ("user", "assistant")]
            assistant.conversation.messages = [dict(m) for m in history]
            question = req.messages[-1]["content"]
            turn = cast(Generator[str, None, None], assistant.turn(question, cancel))  # closed when done
        except BaseException:
            await lease.__aexit__(None, None, None)
            raise
        reply = Reply(loaded.name, _empty(), result, verdict, cartridges=carts)
        stops = req.stop

        def run() -> Iterator[str]:
            held = ""
            try:
                for piece in turn:
                    held += piece
                    cut = min((i for i in (held.find(s) for s in stops if s) if i >= 0), default=-1)
                    if cut >= 0:
                        if held[:cut]:
                            yield held[:cut]
                        result.finish_reason = "stop"
                        cancel.set()
                        return
                    keep = max((len(s) - 1 for s in stops if s), default=0)
                    if len(held) > keep:
                        yield held[: len(held) - keep]
                        held = held[len(held) - keep :]
                if held:
                    yield held
            except PromptError as exc:
                raise RequestError(str(exc), param="messages", code="context_length_exceeded") from None
            finally:
                turn.close()
                stats = engine.last_stats
                if stats is not None:
                    result.finish_reason = result.finish_reason or stats.finish_reason
                    result.prompt_tokens = stats.prompt_tokens
                    result.cached_tokens = stats.prompt_tokens - stats.prompt_tokens_evaluated
                    result.completion_tokens = stats.completion_tokens
                    result.time_to_first_token_s = stats.time_to_first_token_s
                    result.decode_tokens_per_s = stats.decode_tokens_per_s

        async def release() -> None:
            cancel.set()
            await lease.__aexit__(None, None, None)

        reply.pieces = self._relay(run(), cancel.set, disconnected)
        reply.cleanup.append(release)
        return reply

    async def _relay(
        self, source: Iterator[str], stop: Callable[[], None], disconnected: Callable[[], bool]
    ) -> AsyncIterator[str]:
        """Pieces from a blocking iterator, read in a thread of their own; the client going stops it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        done = loop.create_future()

        def pump() -> None:
            try:
                for piece in source:
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
            except BaseException as exc:  # handed to the request, which answers in its API's shape
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            finally:
                loop.call_soon_threadsafe(_finish, done)

        self.active += 1
        # A thread of its own, not the loop's executor: a long answer must not hold a worker the guard needs.
        threading.Thread(target=pump, name="homefire-api-stream", daemon=True).start()
        try:
            while True:
                try:
                    kind, value = await asyncio.wait_for(queue.get(), timeout=0.25)
                except TimeoutError:
                    if disconnected():
                        stop()
                        return
                    continue
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop()
            await done
            self.active -= 1

    # -- memory (--memory) ------------------------------------------------------------------------

    @staticmethod
    def _digest(messages: list[Message]) -> str:
        talk = [[m["role"], m["content"]] for m in messages if m["role"] != "system"]
        return hashlib.sha256(json.dumps(talk).encode("utf-8", "surrogatepass")).hexdigest()

    async def _remember_question(
        self, sent: list[Message], messages: list[Message], verdict: dict[str, Any] | None
    ) -> tuple[int, int] | None:
        """With --memory: the question saved to its conversation (found by the history the client resent), and
        remembered facts added to the system message (`messages`, changed in place). None without memory."""
        memory = self.memory
        if memory is None:
            return None
        key = self._digest(sent[:-1])
        text = sent[-1]["content"]

        def save() -> tuple[int, int]:
            cid = self._conversations.get(key)
            if cid is None:
                cid = memory.store.new_conversation(title=" ".join(text.split())[:60], model=self.model_name)
            mid = memory.store.add_message(cid, "user", text, verdict=verdict)
            if messages and messages[0]["role"] == "system":
                facts = memory.recall(text)
                if facts:
                    messages[0] = {
                        "role": "system",
                        "content": f"{messages[0]['content']}\n\n{memory.facts_prompt(facts)}",
                    }
            return cid, mid

        return await asyncio.get_running_loop().run_in_executor(self._memory_thread, save)

    async def _remember_answer(self, saved: tuple[int, int], sent: list[Message], answer: str, result: Result) -> None:
        memory = self.memory
        assert memory is not None
        cid, mid = saved
        question = sent[-1]["content"]

        def save() -> None:
            writer = memory.answer(cid)
            if answer:
                writer.add(answer)
            writer.finish(complete=result.finish_reason in ("stop", "length"), stats=None)
            key = self._digest([*sent, {"role": "assistant", "content": answer}])
            self._conversations[key] = cid
            while len(self._conversations) > 1024:
                self._conversations.popitem(last=False)
            memory.learn(question, mid)
            memory.index()

        try:
            await asyncio.get_running_loop().run_in_executor(self._memory_thread, save)
        except HomefireError as exc:  # the answer was given: a memory failure is logged, not the client's error
            log.warning("homefire: could not save to memory: %s", exc)

    # -- embeddings -------------------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One unit-length vector per text (the mean of its chunks' vectors), and the tokens read."""

        def run() -> tuple[list[list[float]], int]:
            import numpy as np

            if self._encoder is None:
                from ..encoders import Encoder

                self._encoder = Encoder(threads=1)
            out, tokens = [], 0
            for text in texts:
                chunks = self._encoder.chunks(text)
                tokens += sum(len(c) for c in chunks)
                v = self._encoder.embed_ids(chunks).mean(axis=0)
                out.append((v / max(float(np.linalg.norm(v)), 1e-12)).astype(float).tolist())
            return out, tokens

        return await asyncio.get_running_loop().run_in_executor(self._encoder_thread, run)

    @property
    def encoder_name(self) -> str:
        return "all-minilm-l6-v2"


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _empty() -> AsyncIterator[str]:
    return
    yield  # pragma: no cover


__all__ += ["GuardCache", "Loaded", "ModelError"]
