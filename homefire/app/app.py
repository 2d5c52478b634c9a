"""The Textual chat app. The UI thread only renders; the model loads and answers in worker threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ..assistant import Assistant, load_guard, refusal
from ..config import GenerationSettings
from ..errors import HomefireError
from .widgets import ChatMessage, StatusLine

GREETING = "Welcome to homefire. Everything you type stays on this device."


class HomefireApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "homefire"
    BINDINGS = [
        Binding("escape", "stop", "Stop answer", show=True),
        Binding("ctrl+n", "new_chat", "New chat", show=True),
        Binding("ctrl+o", "cartridges", "Cartridges", show=True, priority=True),
        Binding("ctrl+r", "memory", "Memory", show=True, priority=True),
        Binding("ctrl+f", "search_history", "Search chats", show=True, priority=True),
        Binding("ctrl+q", "quit", "Quit", show=True),
    ]

    class Loaded(Message):
        def __init__(self, assistant: Assistant | None, error: str | None = None) -> None:
            super().__init__()
            self.assistant, self.error = assistant, error

    class Piece(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Finished(Message):
        def __init__(self, error: str | None = None) -> None:
            super().__init__()
            self.error = error

    class Attached(Message):
        def __init__(self, names: list[str], error: str | None = None) -> None:
            super().__init__()
            self.names, self.error = names, error

    def __init__(
        self,
        model: str | Path | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        settings: GenerationSettings | None = None,
        assistant: Assistant | None = None,
        guard: str = "normal",
        incognito: bool = False,
    ) -> None:
        super().__init__()
        self.incognito = incognito  # with a ready-made assistant, its memory (or none) is what runs
        self.model_spec, self.n_ctx, self.n_threads = model, n_ctx, n_threads
        # With a ready-made assistant, its guard (or none) is what runs.
        self.guard_level = guard if assistant is None else (assistant.guard.strictness if assistant.guard else "off")
        self.settings = settings or GenerationSettings()
        self.assistant: Assistant | None = assistant
        self.model_name = str(model or "smollm2-135m") if assistant is None else assistant.engine.model.name
        self.answering = False
        self._cancel = threading.Event()
        self._stream: MarkdownStream | None = None
        self._reply: ChatMessage | None = None
        self._started = 0.0
        self._pieces = 0
        self._state = "ready"
        self._asked: ChatMessage | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="transcript"):
            yield Static(GREETING, id="greeting")
        yield StatusLine(id="status")
        yield Input(placeholder="Ask anything — Enter sends, Esc stops", id="prompt")

    def on_mount(self) -> None:
        self.query_one("#transcript", VerticalScroll).anchor()
        self.query_one("#prompt", Input).focus()
        if self.assistant is None:
            self._status("loading model…")
            self.load_model()
        else:
            self._status("ready")

    @property
    def ready(self) -> bool:
        return self.assistant is not None

    def _status(self, state: str, detail: str = "") -> None:
        self._state = state
        names = [c.name for c in self.assistant.cartridges] if self.assistant else []
        cartridges = f"cartridge {'+'.join(names)}" if names else ""
        guard = {"off": "GUARD OFF", "normal": ""}.get(self.guard_level, f"guard {self.guard_level}")
        incognito = "incognito" if self.assistant is not None and self.assistant.memory is None else ""
        parts = (guard, incognito, cartridges, detail)
        self.query_one(StatusLine).show(self.model_name, state, " · ".join(p for p in parts if p))

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        from ..engine import Engine

        try:
            guard = load_guard(self.guard_level)
            memory = None
            if not self.incognito:
                from ..memory import Memory

                memory = Memory()  # a busy or damaged database is said here, before a chat that would not be saved
            engine = Engine(self.model_spec, n_ctx=self.n_ctx, n_threads=self.n_threads)
        except HomefireError as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(Assistant(engine, settings=self.settings, guard=guard, memory=memory)))

    def on_homefire_app_loaded(self, event: Loaded) -> None:
        if event.error:
            self._status("no model", event.error)
            self.notify(event.error, severity="error", timeout=10)
            return
        self.assistant = event.assistant
        assert self.assistant is not None
        self.model_name = self.assistant.engine.model.name
        self._status("ready")

    @on(Input.Submitted, "#prompt")
    async def send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if text == "/why":
            event.input.value = ""
            note = self.assistant.explain() if self.assistant else "The model is still loading."
            await self.query_one("#transcript", VerticalScroll).mount(ChatMessage("note", note))
            return
        if self.answering:
            self.notify("Still answering: press Esc to stop it first.")
            return
        if not self.ready:
            self.notify("The model is still loading; your message is kept.")
            return
        event.input.value = ""
        transcript = self.query_one("#transcript", VerticalScroll)
        self._asked = ChatMessage("user", text)
        await transcript.mount(self._asked)
        self._reply = ChatMessage("assistant")
        await transcript.mount(self._reply)
        transcript.anchor()
        self._stream = Markdown.get_stream(self._reply.markdown)
        self._cancel.clear()
        self.answering = True
        self._started, self._pieces = time.perf_counter(), 0
        self._status("answering…")
        self.answer(text)

    @work(thread=True, exclusive=True, group="answer")
    def answer(self, text: str) -> None:
        assert self.assistant is not None
        try:
            for piece in self.assistant.turn(text, self._cancel):
                self.post_message(self.Piece(piece))
        except HomefireError as exc:
            self.post_message(self.Finished(str(exc)))
            return
        self.post_message(self.Finished())

    async def on_homefire_app_piece(self, event: Piece) -> None:
        if self._reply is None or self._stream is None:
            return
        self._reply.text += event.text
        self._pieces += 1
        await self._stream.write(event.text)
        elapsed = time.perf_counter() - self._started
        if self._pieces % 8 == 0 and elapsed > 0:
            self._status("answering…", f"{self._pieces / elapsed:.0f} tok/s")

    async def on_homefire_app_finished(self, event: Finished) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.answering = False
        reply, self._reply = self._reply, None
        if event.error:
            if reply is not None:
                reply.set_classes("message error")
                reply.text = event.error
                await reply.markdown.update(event.error)
            self._status("ready")
            self.notify(event.error, severity="error")
            return
        verdict = self.assistant.last_verdict if self.assistant else None
        if verdict is not None and self._asked is not None:
            self._asked.set_badge(
                f"guard ✓ {verdict.latency_ms:.0f} ms"
                if verdict.allowed
                else f"⛔ not sent to the model: {verdict.label} {verdict.score:.2f}"
            )
        if verdict is not None and not verdict.allowed and reply is not None:
            reply.set_classes("message blocked")
            reply.text = refusal(verdict)
            await reply.markdown.update(reply.text)
            self._status("ready", "blocked by the guard")
            return
        facts = self.assistant.last_facts if self.assistant else []
        if facts and reply is not None:
            reply.set_badge("remembered: " + "; ".join(f.text for f in facts))
        stats = self.assistant.last_stats if self.assistant else None
        detail = ""
        if stats:
            detail = (
                f"{stats.decode_tokens_per_s:.0f} tok/s · first token {stats.time_to_first_token_s:.2f}s"
                f" · {stats.completion_tokens} tokens"
            )
        self._status("stopped" if stats and stats.finish_reason == "cancelled" else "ready", detail)

    def action_cartridges(self) -> None:
        from ..engine import cartridge as cartridges
        from .screens import CartridgePicker

        if not self.ready or self.answering:
            self.notify("Wait for the model to be ready (or stop the answer) to change cartridges.")
            return
        assert self.assistant is not None
        attached = {c.name for c in self.assistant.cartridges}
        rows = [
            (c.name, f"{c.tokens:,} tokens · {c.kv_type} · {cartridges.status(c)}", c.name in attached)
            for c in cartridges.all_cartridges()
        ]

        def chosen(names: list[str] | None) -> None:
            if names is not None:
                self._status("loading cartridges…")
                self.attach_cartridges(names)

        self.push_screen(CartridgePicker(rows), chosen)

    @work(thread=True, exclusive=True, group="model")
    def attach_cartridges(self, names: list[str]) -> None:
        assert self.assistant is not None
        try:
            if names:
                self.assistant.attach(names)
            else:
                self.assistant.detach()
        except HomefireError as exc:
            self.post_message(self.Attached(names, str(exc)))
            return
        self.post_message(self.Attached(names))

    def on_homefire_app_attached(self, event: Attached) -> None:
        if event.error:
            self.notify(event.error, severity="error", timeout=10)
        elif event.names:
            self.notify(f"Answering from {', '.join(event.names)}.")
        else:
            self.notify("No cartridge: answering from the model alone.")
        self._status("ready")

    def action_memory(self) -> None:
        from .memory_screens import MemoryScreen

        if self.assistant is None or self.assistant.memory is None:
            self.notify("Incognito: nothing is remembered." if self.ready else "The model is still loading.")
            return
        self.push_screen(MemoryScreen(self.assistant.memory))

    def action_search_history(self) -> None:
        from .memory_screens import HistorySearch

        if self.assistant is None or self.assistant.memory is None:
            self.notify("Incognito: no conversations are saved." if self.ready else "The model is still loading.")
            return

        async def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.push_screen(HistorySearch(self.assistant.memory), chosen)

    async def open_conversation(self, conversation_id: int) -> None:
        """Show a saved conversation and go on with it."""
        if self.answering or self.assistant is None:
            self.notify("Stop the answer first (Esc).")
            return
        try:
            self.assistant.resume(conversation_id)
        except HomefireError as exc:
            self.notify(str(exc), severity="error")
            return
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.query(ChatMessage).remove()
        for m in self.assistant.conversation.messages:
            await transcript.mount(ChatMessage(m["role"], m["content"]))
        transcript.scroll_end(animate=False)
        self._status("ready", f"conversation {conversation_id}")

    def action_stop(self) -> None:
        if self.answering:
            self._cancel.set()

    async def action_new_chat(self) -> None:
        if self.answering:
            self.notify("Stop the answer first (Esc).")
            return
        if self.assistant:
            self.assistant.new_conversation()
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.query(ChatMessage).remove()
        self._status("ready" if self.ready else "loading model…")

    def transcript_messages(self) -> list[Any]:
        return list(self.query(ChatMessage))


def run_app(
    model: str | Path | None = None,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    guard: str = "normal",
    incognito: bool = False,
) -> None:
    HomefireApp(model=model, n_ctx=n_ctx, n_threads=n_threads, guard=guard, incognito=incognito).run()
