"""The Textual chat app. The UI thread only renders; the model loads, answers, builds and switches in workers.

Every action is listed once in commands.py: keys, the command palette (Ctrl+P), slash commands and
the help screen (F1) come from that table.
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from .. import config as cfg
from .. import session
from ..config import GenerationSettings, UserConfig
from ..errors import HomefireError, MemoryLocked
from . import widgets
from .commands import COMMANDS, SLASH
from .themes import THEMES
from .widgets import ChatMessage, PromptArea, Sidebar, Status, StatusLine

if TYPE_CHECKING:  # the model's stack (numpy, llama.cpp) is imported by the loading worker, not before the first screen
    from ..assistant import Assistant

# Cores kept for the event loop: with every core in llama.cpp's hands it starved (measured: 200 ms
# stalls, and 60x slower answers on a busy machine, before the short spin of homefire/omp.py).
UI_CORES = 1
GREETING = "Welcome to homefire. Everything you type stays on this device."
HINT = "F1 help · Ctrl+P all commands · Ctrl+B chats · Enter sends, Ctrl+J new line"
NARROW = 70  # below this many columns the chat list hides unless asked for


class HomefireApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "homefire"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *(
            Binding(
                c.key, c.action, c.title, show=c.key in ("escape", "ctrl+n", "f1"), priority=c.key.startswith("ctrl")
            )
            for c in COMMANDS
            if c.key and c.action not in ("command_palette", "quit")
        ),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    class Loaded(Message):
        def __init__(self, assistant: Assistant | None, error: str | None = None) -> None:
            super().__init__()
            self.assistant, self.error = assistant, error

    class MemoryOpened(Message):
        def __init__(self, memory: Any) -> None:
            super().__init__()
            self.memory = memory

    class NeedPassphrase(Message):
        """The memory database is encrypted: the loading worker waits on `reply` for the unlocked Memory."""

        def __init__(self, reason: str, reply: queue.Queue[Any]) -> None:
            super().__init__()
            self.reason, self.reply = reason, reply

    class Piece(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Finished(Message):
        def __init__(self, error: str | None = None) -> None:
            super().__init__()
            self.error = error

    class Done(Message):
        """A background job of the app (attach cartridges, switch model, apply settings) ended."""

        def __init__(self, note: str = "", error: str | None = None) -> None:
            super().__init__()
            self.note, self.error = note, error

    # What a worker built, handed to the event loop: only a handler there changes the app's or the assistant's state.

    class CartridgesChecked(Message):
        def __init__(self, cartridges: list[Any]) -> None:
            super().__init__()
            self.cartridges = cartridges

    class EngineLoaded(Message):
        def __init__(self, engine: Any, spec: str | Path | None, n_ctx: int, n_threads: int | None) -> None:
            super().__init__()
            self.engine, self.spec, self.n_ctx, self.n_threads = engine, spec, n_ctx, n_threads

    class GuardLoaded(Message):
        def __init__(self, guard: Any, level: str) -> None:
            super().__init__()
            self.guard, self.level = guard, level

    def __init__(
        self,
        model: str | Path | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        settings: GenerationSettings | None = None,
        assistant: Assistant | None = None,
        guard: str | None = None,
        incognito: bool = False,
        config: UserConfig | None = None,
    ) -> None:
        """Options given here win over the saved settings (`config`, read from the config file if None).

        With a ready-made `assistant` (tests, embedding), its engine, guard and memory are what run.
        """
        super().__init__()
        if config is None:
            try:
                config = cfg.load_config()
            except HomefireError as exc:
                self._config_error: str | None = str(exc)
                config = UserConfig()
            else:
                self._config_error = None
        else:
            self._config_error = None
        self.config = config
        self.incognito = incognito
        # None threads: the engine chooses and adapts (engine/threads.py), keeping UI_CORES for the event loop.
        plan = session.resolve(
            session.Options(model=model, n_ctx=n_ctx, threads=n_threads, guard=guard, incognito=incognito),
            config,
            reserve_cores=UI_CORES,
        )
        self.model_spec, self.n_ctx, self.n_threads, self.guard_level = plan.model, plan.n_ctx, plan.threads, plan.guard
        if assistant is not None:
            self.guard_level = assistant.guard.strictness if assistant.guard else "off"
        self.settings = settings or GenerationSettings(temperature=config.temperature)
        self.assistant: Assistant | None = assistant
        self._owns_engine = assistant is None  # an engine handed in is its owner's to close, not ours
        self.memory: Any = assistant.memory if assistant is not None else None
        self.model_name = str(self.model_spec or "smollm2-135m") if assistant is None else assistant.engine.model.name
        self.answering = False
        self.switching = False  # a model load, cartridge attach or settings change is running
        self._cancel = threading.Event()
        self._stream: MarkdownStream | None = None
        self._reply: ChatMessage | None = None
        self._asked: ChatMessage | None = None
        self._started = 0.0
        self._first_piece = 0.0
        self._pieces = 0
        self._state = "ready"
        self._editing: int | None = None  # index of the question being edited, until it is resent
        self._sidebar_wanted = config.sidebar
        self._send_when_ready = False  # Enter was pressed while the model loaded
        self.status = Status(model=self.model_name, guard=self.guard_level)

    # ----- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
            with Vertical(id="main"):
                with VerticalScroll(id="transcript"):
                    yield Static(GREETING, id="greeting")
                    yield Static(HINT, id="hint")
                yield PromptArea(id="prompt", placeholder="Ask anything — Enter sends, Esc stops")
        yield StatusLine(id="status")

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.config.theme
        self.query_one("#transcript", VerticalScroll).anchor()
        self.query_one("#prompt", PromptArea).focus()
        self._layout(self.size.width)
        self.set_interval(2.0, self._refresh_status)
        if not self.is_headless and not self.is_web and self._terminal_alive():
            self.set_interval(1.0, self._check_terminal)
        if self._config_error:
            self.notify(self._config_error, severity="error", timeout=15)
        if self.assistant is None:
            self._status("loading model…")
            self.load_model()
        else:
            self._status("ready")
            self._fill_sidebar()
            self._settle()

    exit_promptly = False  # set by run_app: this app is the whole process, and nothing may outlive it

    def on_unmount(self) -> None:
        self._cancel.set()  # an answer still streaming stops at its next token
        if self.exit_promptly:
            from .lifetime import exit_within

            exit_within()

    def on_resize(self, event: Any) -> None:
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        self.query_one(Sidebar).display = self._sidebar_wanted and (not narrow or self._sidebar_forced)

    _sidebar_forced = False  # shown by Ctrl+B on a narrow screen

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        narrow = self.size.width < NARROW
        if narrow:
            self._sidebar_forced = not sidebar.display
            self._sidebar_wanted = self._sidebar_wanted or self._sidebar_forced
        else:
            self._sidebar_wanted = not sidebar.display
        self._layout(self.size.width)
        if sidebar.display:
            self.query_one("#chats").focus()
        else:
            self.query_one("#prompt", PromptArea).focus()

    # ----- status ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.assistant is not None

    def _status(self, state: str, detail: str = "") -> None:
        self._state = state
        s = self.status
        s.model, s.state, s.detail, s.guard = self.model_name, state, detail, self.guard_level
        names = [c.name for c in self.assistant.cartridges] if self.assistant else []
        s.cartridges = f"cartridge {'+'.join(names)}" if names else ""
        incognito = self.incognito or (self.assistant is not None and self.assistant.memory is None)
        s.memory = "incognito" if incognito else "memory on"
        self._refresh_status()

    def _check_terminal(self) -> None:
        """Leave when the terminal is gone. Closing a terminal sends SIGHUP to its session leader only: under
        `make run` that is make, which waits for us, and we would spin on a dead tty forever."""
        if not self._terminal_alive():
            self._cancel.set()
            self.exit()

    @staticmethod
    def _terminal_alive() -> bool:
        try:
            return sys.__stdin__ is not None and os.isatty(sys.__stdin__.fileno())
        except (OSError, ValueError):
            return False

    def _refresh_status(self) -> None:
        lines = self.query(StatusLine)  # empty while the app shuts down and a worker still reports
        if lines:
            lines.first().show(self.status, widgets.rss_mb())

    # ----- loading -----------------------------------------------------------------------------------

    def _plan(self, **changes: Any) -> session.Plan:
        """The session the app runs (or is about to run), with these choices changed."""
        plan = session.Plan(
            model=self.model_spec,
            n_ctx=self.n_ctx,
            threads=self.n_threads,
            kv="f16",
            guard=self.guard_level,
            system_prompt=self.config.system_prompt,
            incognito=self.incognito,
            reserve_cores=UI_CORES,
        )
        return plan.but(**changes)

    def _unlock(self, locked: MemoryLocked) -> Any:
        """Session's `unlock` for the app: the passphrase dialog, answered on the event loop; Escape gives None."""
        reply: queue.Queue[Any] = queue.Queue()
        self.post_message(self.NeedPassphrase(str(locked), reply))
        return reply.get()

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        memory = None
        if not self.incognito:
            try:
                # A busy or damaged database is said here, before a chat that would not be saved; an encrypted one
                # asks for its passphrase in a dialog, and Escape there goes on incognito.
                memory = session.open_memory(unlock=self._unlock)
            except HomefireError as exc:
                self.post_message(self.Loaded(None, str(exc)))
                return
            self.post_message(self.MemoryOpened(memory))
        try:
            assistant = session.open_assistant(self._plan(), settings=self.settings, memory=memory)
        except HomefireError as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(assistant))

    def on_homefire_app_need_passphrase(self, event: NeedPassphrase) -> None:
        from .passphrase import PassphraseScreen

        def unlocked(memory: Any) -> None:
            if memory is None:
                self.notify("Memory stays locked: this session is incognito (nothing is saved or recalled).")
            event.reply.put(memory)

        self.push_screen(PassphraseScreen.for_memory(event.reason), unlocked)

    def on_homefire_app_memory_opened(self, event: MemoryOpened) -> None:
        self.memory = event.memory
        if event.memory is None:
            self.incognito = True  # the passphrase dialog was dismissed: this session saves nothing
        self._fill_sidebar()

    def on_homefire_app_loaded(self, event: Loaded) -> None:
        if event.error:
            self._status("no model", event.error)
            self.notify(event.error, severity="error", timeout=10)
            return
        self.assistant = event.assistant
        assert self.assistant is not None
        self.model_name = self.assistant.engine.model.name
        self._status("ready")
        self._settle()
        if self._send_when_ready:
            self._send_when_ready = False
            area = self.query_one("#prompt", PromptArea)
            if area.text.strip():
                area.action_submit()

    def _settle(self) -> None:
        """Everything loaded so far lives as long as the app: keep the collector from walking it again.
        A full collection over the model's stack took 55 ms on the UI thread, mid-answer (bench/tui.py)."""
        gc.collect()
        gc.freeze()

    # ----- sidebar -----------------------------------------------------------------------------------

    def _fill_sidebar(self) -> None:
        store = self.memory.store if self.memory is not None else None
        rows = store.conversations(limit=500) if store is not None else []
        current = self.assistant.conversation.id if self.assistant else None
        self.query_one(Sidebar).show(rows, current)

    @on(Sidebar.Chosen)
    async def sidebar_chosen(self, event: Sidebar.Chosen) -> None:
        from .screens import AskScreen, ConfirmScreen

        if self.memory is None:
            return
        cid = event.conversation_id
        if event.action == "open":
            await self.open_conversation(cid)
        elif event.action == "rename":
            title = self.memory.store.conversation(cid).get("title", "")
            self.push_screen(AskScreen("New title for this chat:", title), partial(self._rename, cid))
        elif event.action == "delete":
            title = self.memory.store.conversation(cid).get("title") or "untitled"
            self.push_screen(
                ConfirmScreen(f"Delete the chat “{title}”? It is erased from disk, not hidden."),
                partial(self._delete_chat, cid),
            )

    def _rename(self, cid: int, title: str | None) -> None:
        if title and self.memory is not None:
            self.memory.store.rename_conversation(cid, title)
            self.notify(f"Renamed to “{title}”.")
            self._fill_sidebar()

    async def _delete_chat(self, cid: int, yes: bool | None) -> None:
        if not yes or self.memory is None:
            return
        if self.answering and self.assistant and self.assistant.conversation.id == cid:
            self.notify("Stop the answer first (Esc).")
            return
        self.memory.store.delete_conversation(cid)
        if self.assistant is not None and self.assistant.conversation.id == cid:
            await self.action_new_chat()
        self.notify("Chat deleted.")
        self._fill_sidebar()

    # ----- sending -----------------------------------------------------------------------------------

    @on(PromptArea.Submitted)
    async def submitted(self, event: PromptArea.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        area = event.area
        if text.startswith("/") and text.split(" ", 1)[0] not in ("/remember", "/forget"):
            area.value = ""  # before the command runs: /edit puts the question to edit in the box
            if await self.slash(text):
                area.remember(text)
            else:
                area.value = text  # an unknown command: kept, to be corrected
            return
        if self.answering:
            self.notify("Still answering: press Esc to stop it first.")
            return
        if not self.ready or self.switching:
            if self.assistant is None and self._state == "loading model…":
                self._send_when_ready = True  # sent as soon as the model is up
                self.notify("The model is still loading: your message goes as soon as it is ready.")
            else:
                self.notify("The model is busy (loading or switching); your message is kept.")
            return
        area.remember(text)
        area.value = ""
        if self._editing is not None:
            index, self._editing = self._editing, None
            await self._rewind(index)
        await self.ask(text)

    async def ask(self, text: str, regenerate: bool = False) -> None:
        # Busy from the first line: the mounts below yield to the event loop, and anything polling in
        # between (a worker, a test waiting for the answer) must not see an idle app with an empty reply.
        self.answering = True
        transcript = self.query_one("#transcript", VerticalScroll)
        if regenerate:
            self._asked = [m for m in self.query(ChatMessage) if m.role == "user"][-1]
        else:
            self._asked = ChatMessage("user", text)
            await transcript.mount(self._asked)
        self._reply = ChatMessage("assistant")
        await transcript.mount(self._reply)
        transcript.anchor()
        self._stream = Markdown.get_stream(self._reply.markdown)
        self._cancel.clear()
        self._started, self._first_piece, self._pieces = time.perf_counter(), 0.0, 0
        self._status("answering…")
        self.answer(text, regenerate)

    @work(thread=True, exclusive=True, group="answer")
    def answer(self, text: str, regenerate: bool = False) -> None:
        assert self.assistant is not None
        try:
            pieces = self.assistant.regenerate(self._cancel) if regenerate else self.assistant.turn(text, self._cancel)
            for piece in pieces:
                self.post_message(self.Piece(piece))
        except HomefireError as exc:
            self.post_message(self.Finished(str(exc)))
            return
        self.post_message(self.Finished())

    async def on_homefire_app_piece(self, event: Piece) -> None:
        if self._reply is None or self._stream is None:
            return
        now = time.perf_counter()
        if not self._pieces:
            self._first_piece = now
            self.status.speed = f"first token {now - self._started:.2f}s"
        self._reply.text += event.text
        self._pieces += 1
        await self._stream.write(event.text)
        elapsed = now - self._first_piece
        if self._pieces % 8 == 0 and elapsed > 0:
            ttft = self._first_piece - self._started
            self.status.speed = f"{self._pieces / elapsed:.0f} tok/s · first token {ttft:.2f}s"
            self._refresh_status()

    async def on_homefire_app_finished(self, event: Finished) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.answering = False
        reply, self._reply = self._reply, None
        asked, self._asked = self._asked, None
        assistant = self.assistant
        if event.error:
            if reply is not None:
                reply.set_classes("message error")
                reply.text = event.error
                await reply.markdown.update(event.error)
            self._status("ready")
            self.notify(event.error, severity="error")
            return
        assert assistant is not None
        messages = assistant.conversation.messages
        if asked is not None and reply is not None and len(messages) >= 2 and messages[-2]["role"] == "user":
            asked.index, reply.index = len(messages) - 2, len(messages) - 1
        elif reply is not None:
            reply.set_classes("message note")  # /remember, /forget: not part of the conversation
        verdict = assistant.last_verdict
        if verdict is not None and asked is not None:
            asked.verdict = verdict.as_dict()
            asked.set_badge(
                f"guard ✓ {verdict.latency_ms:.0f} ms"
                if verdict.allowed
                else f"⛔ not sent to the model: {verdict.label} {verdict.score:.2f}"
            )
        if verdict is not None and not verdict.allowed and reply is not None:
            reply.set_classes("message blocked")
            from ..assistant import refusal

            reply.text = refusal(verdict)
            await reply.markdown.update(reply.text)
            self._status("ready", "blocked by the guard")
            self._fill_sidebar()
            return
        if reply is not None:
            reply.facts = [f.text for f in assistant.last_facts]
            if reply.facts:
                reply.set_badge("remembered: " + "; ".join(reply.facts))
        stats = assistant.last_stats
        if stats is not None and reply is not None and reply.index is not None:
            reply.stats = stats.as_dict()
            self.status.speed = (
                f"{stats.decode_tokens_per_s:.0f} tok/s · first token {stats.time_to_first_token_s:.2f}s"
                f" · {stats.completion_tokens} tokens"
            )
        self._status("stopped" if stats and stats.finish_reason == "cancelled" else "ready")
        self._fill_sidebar()

    # ----- message actions ---------------------------------------------------------------------------

    @on(ChatMessage.Action)
    async def message_action(self, event: ChatMessage.Action) -> None:
        m = event.message
        if event.action == "leave":
            self.query_one("#prompt", PromptArea).focus()
        elif event.action == "copy":
            self._copy(m.text, "the message")
        elif event.action == "copy_code":
            self._copy_code(m)
        elif event.action == "info":
            self._info(m)
        elif event.action == "edit":
            if m.role != "user" or m.index is None:
                self.notify("Only your questions can be edited (E on one of them).")
                return
            self._edit(m)
        elif event.action == "regenerate":
            last = self._last_answer()
            if m.role != "assistant" or last is not m:
                self.notify("Only the last answer can be regenerated (R on it, or Ctrl+G).")
                return
            await self.action_regenerate()

    def _copy(self, text: str, what: str) -> None:
        if not text:
            self.notify("Nothing to copy yet.")
            return
        self.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text):,} characters) to the clipboard.")

    def _copy_code(self, m: ChatMessage | None) -> None:
        block = m.next_code_block() if m is not None else None
        if block is None:
            self.notify("No code block in that answer.")
            return
        code, n, total = block
        self._copy(code, f"code block {n} of {total}" if total > 1 else "the code block")

    def _info(self, m: ChatMessage) -> None:
        from .screens import InfoScreen, describe_message

        verdict = m.verdict
        if m.role == "assistant":
            earlier = [x for x in self.query(ChatMessage) if x.role == "user" and x.index == (m.index or 0) - 1]
            verdict = earlier[0].verdict if earlier and m.index is not None else None
        self.push_screen(InfoScreen(describe_message(m.role, verdict, m.stats, m.facts)))

    def _edit(self, m: ChatMessage) -> None:
        if self.answering:
            self.notify("Stop the answer first (Esc).")
            return
        self._editing = m.index
        area = self.query_one("#prompt", PromptArea)
        area.value = m.text
        area.focus()
        self._status("editing", "Enter resends from here on · Esc in the list cancels")

    async def _rewind(self, index: int) -> None:
        """Drop the conversation from message `index` on, on screen and on disk."""
        assert self.assistant is not None
        self.assistant.rewind(index)
        for m in list(self.query(ChatMessage)):
            if m.index is not None and m.index >= index:
                await m.remove()

    def _last_answer(self) -> ChatMessage | None:
        answers = [m for m in self.query(ChatMessage) if m.role == "assistant" and m.index is not None]
        return answers[-1] if answers else None

    # ----- actions (the commands table) --------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for c in COMMANDS:
            if c.action not in ("command_palette", "quit"):
                yield SystemCommand(c.title, c.help, partial(self.call_later, self.run_action, c.action))
        yield from super().get_system_commands(screen)

    def _modal(self) -> bool:
        return len(self.screen_stack) > 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Over a dialog, the chat's keys do nothing: the dialog's own keys (Ctrl+S saves settings…) win.
        if self._modal() and action not in ("quit", "command_palette", "help", "stop"):
            return False
        return True

    def action_stop(self) -> None:
        if self.answering:
            self._cancel.set()
        elif self._editing is not None:
            self._editing = None
            self.query_one("#prompt", PromptArea).value = ""
            self._status("ready")

    async def action_new_chat(self) -> None:
        if self.answering:
            self.notify("Stop the answer first (Esc).")
            return
        if self.assistant:
            self.assistant.new_conversation()
        self._editing = None
        await self.query_one("#transcript", VerticalScroll).query(ChatMessage).remove()
        self._status("ready" if self.ready else "loading model…")
        self._fill_sidebar()
        self.query_one("#prompt", PromptArea).focus()

    async def action_regenerate(self) -> None:
        if self.answering or not self.ready or self.switching:
            self.notify("Wait for the model (or press Esc to stop the answer) first.")
            return
        last = self._last_answer()
        if last is None:
            self.notify("No answer to regenerate yet.")
            return
        await last.remove()
        await self.ask("", regenerate=True)

    def action_edit_last(self) -> None:
        questions = [m for m in self.query(ChatMessage) if m.role == "user" and m.index is not None]
        if not questions:
            self.notify("No question to edit yet.")
            return
        self._edit(questions[-1])

    def action_copy_last(self) -> None:
        last = self._last_answer()
        self._copy(last.text if last else "", "the last answer")

    def action_copy_code(self) -> None:
        last = self._last_answer()
        self._copy_code(last)

    async def action_why(self) -> None:
        await self._note(self.assistant.explain() if self.assistant else "The model is still loading.")

    async def _note(self, text: str) -> None:
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.mount(ChatMessage("note", text))
        transcript.scroll_end(animate=False)

    def action_help(self) -> None:
        from .screens import HelpScreen

        self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "homefire-light" if self.theme == "homefire-dark" else "homefire-dark"
        self._save(self.config.changed(theme=self.theme))

    def action_remember(self) -> None:
        self.query_one("#prompt", PromptArea).value = "/remember "

    def action_forget(self) -> None:
        self.query_one("#prompt", PromptArea).value = "/forget "

    async def action_incognito(self) -> None:
        if self.answering:
            self.notify("Stop the answer first (Esc).")
            return
        if self.assistant is None:
            self.notify("The model is still loading.")
            return
        if self.assistant.memory is not None:
            self.assistant.memory = None
            self.incognito = True
            note = "Incognito: from now on nothing is saved and nothing is recalled. /incognito again to go back."
        else:
            if self.memory is None:
                self.notify("Memory is not open in this session (started with --incognito).", severity="warning")
                return
            self.assistant.memory = self.memory
            self.incognito = False
            note = "Memory is on again: chats are saved from now on."
        await self.action_new_chat()
        self.notify(note)

    def action_rename_chat(self, title: str = "") -> None:
        from .screens import AskScreen

        cid = self.assistant.conversation.id if self.assistant else None
        if cid is None or self.memory is None:
            self.notify("This chat is not saved yet (or you are incognito): nothing to rename.")
            return
        if title:
            self._rename(cid, title)
        else:
            self.push_screen(AskScreen("Title for this chat:"), partial(self._rename, cid))

    def action_export_chat(self, fmt: str = "md") -> None:
        from ..models.store import write_private

        if fmt not in ("md", "json"):
            self.notify("Export as md or json: /export md, /export json", severity="warning")
            return
        conv = self.assistant.conversation if self.assistant else None
        if conv is None or not conv.messages:
            self.notify("Nothing to export yet.")
            return
        if conv.id is not None and self.assistant is not None and self.assistant.memory is not None:
            text = self.assistant.memory.export_conversation(conv.id, fmt)
        elif fmt == "json":
            text = json.dumps([{"role": m["role"], "text": m["content"]} for m in conv.messages], indent=2)
        else:
            text = "\n\n".join(f"**{m['role']}**: {m['content']}" for m in conv.messages) + "\n"
        folder = cfg.data_dir() / "exports"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"chat-{conv.id or 'incognito'}-{datetime.now():%Y%m%d-%H%M%S}.{fmt}"
        try:
            write_private(path, text)
        except OSError as exc:
            self.notify(f"Could not export: {exc.strerror}. Nothing was lost.", severity="error")
            return
        self.notify(f"Exported to {path}")

    def action_memory(self) -> None:
        from .memory_screens import MemoryScreen

        if self.assistant is None or self.assistant.memory is None:
            self.notify("Incognito: nothing is remembered." if self.ready else "The model is still loading.")
            return
        self.push_screen(MemoryScreen(self.assistant.memory))

    def action_search_history(self, query: str = "") -> None:
        from .memory_screens import HistorySearch

        if self.memory is None or (self.assistant is not None and self.assistant.memory is None):
            self.notify("Incognito: no conversations are saved." if self.ready else "The memory is still opening.")
            return

        async def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.push_screen(HistorySearch(self.memory, query), chosen)

    async def open_conversation(self, conversation_id: int) -> None:
        """Show a saved conversation and go on with it."""
        if self.answering or self.assistant is None:
            self.notify("Stop the answer first (Esc)." if self.answering else "The model is still loading.")
            return
        try:
            self.assistant.resume(conversation_id)
        except HomefireError as exc:
            self.notify(str(exc), severity="error")
            return
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.query(ChatMessage).remove()
        for i, m in enumerate(self.assistant.conversation.messages):
            role = "assistant" if m["role"] == "assistant" else "user"
            message = ChatMessage(role, m["content"])
            message.index = i
            message.verdict = m.get("verdict")
            await transcript.mount(message)
            if m.get("blocked") and role == "assistant":
                message.set_classes("message blocked")
        transcript.scroll_end(animate=False)
        self._status("ready", f"chat {conversation_id}")
        self._fill_sidebar()
        self.query_one("#prompt", PromptArea).focus()

    def action_cartridges(self, names: str = "") -> None:
        from .screens import CartridgeScreen

        if not self.ready or self.answering or self.switching:
            self.notify("Wait for the model to be ready (or stop the answer) to change cartridges.")
            return
        assert self.assistant is not None
        if names:
            chosen = [] if names.strip() == "off" else names.replace(",", " ").split()
            self._begin_switch("loading cartridges…")
            self.attach_cartridges(chosen)
            return

        def picked(chosen: list[str] | None) -> None:
            if chosen is not None:
                self._begin_switch("loading cartridges…")
                self.attach_cartridges(chosen)

        attached = [c.name for c in self.assistant.cartridges]
        self.push_screen(CartridgeScreen(self.assistant.engine, attached, self.assistant.guard), picked)

    def _begin_switch(self, status: str) -> None:
        """Mark the model busy before its worker starts, on the event loop: a message sent in
        between would otherwise start an answer on the model being swapped out."""
        self.switching = True
        self._status(status)

    @work(thread=True, exclusive=True, group="model")
    def attach_cartridges(self, names: list[str]) -> None:
        assert self.assistant is not None
        try:
            carts = self.assistant.check_cartridges(names)  # slow: a state file's sha256
        except HomefireError as exc:
            self.post_message(self.Done(error=str(exc)))
            return
        self.post_message(self.CartridgesChecked(carts))

    def on_homefire_app_cartridges_checked(self, event: CartridgesChecked) -> None:
        assert self.assistant is not None
        names = [c.name for c in event.cartridges]
        if names:
            self.assistant.cartridges = event.cartridges
        else:
            self.assistant.detach()
        note = f"Answering from {', '.join(names)}." if names else "No cartridge: answering from the model alone."
        self.post_message(self.Done(note))

    def on_homefire_app_done(self, event: Done) -> None:
        self.switching = False
        if event.error:
            self.notify(event.error, severity="error", timeout=10)
        elif event.note:
            self.notify(event.note)
        self._status("ready")

    def action_models(self, name: str = "") -> None:
        from .screens import ModelScreen

        if name:
            self._switch(name)
            return

        def picked(chosen: str | None) -> None:
            if chosen:
                self._switch(chosen)

        self.push_screen(ModelScreen(self.model_name), picked)

    def _switch(self, name: str) -> None:
        if self.answering or self.switching or not self.ready:
            self.notify("Wait for the model to be ready (or stop the answer) to switch models.")
            return
        self._begin_switch(f"loading {name}…")
        self.reload_engine(name, self.n_ctx, self.n_threads)

    @work(thread=True, exclusive=True, group="model")
    def reload_engine(self, name: str | Path | None, n_ctx: int, n_threads: int | None) -> None:
        """Load a model (another one, or the same with a new context size or threads) without restarting.
        The old one keeps answering until the new one is ready; a failure keeps the old one."""
        try:
            engine = session.open_engine(self._plan(model=name, n_ctx=n_ctx, threads=n_threads))
        except HomefireError as exc:
            self.post_message(self.Done(error=f"{exc} — still on {self.model_name}"))
            return
        self.post_message(self.EngineLoaded(engine, name, n_ctx, n_threads))

    def on_homefire_app_engine_loaded(self, event: EngineLoaded) -> None:
        from ..engine import Engine

        assert self.assistant is not None
        engine = event.engine
        old = self.assistant.engine
        self.assistant.detach()  # cartridges are bound to the model that made them
        self.assistant.engine = engine
        if self._owns_engine and isinstance(old, Engine):  # one handed in (a test's) is its owner's to close
            old.close()
        self._owns_engine = True
        self.model_name, self.model_spec, self.n_ctx, self.n_threads = (
            engine.model.name,
            event.spec,
            event.n_ctx,
            event.n_threads,
        )
        self._save(self.config.changed(model=engine.model.name, n_ctx=event.n_ctx, threads=event.n_threads))
        self.post_message(self.Done(f"Now answering with {engine.model.name}."))

    def action_settings(self) -> None:
        from .screens import SettingsScreen

        self.push_screen(SettingsScreen(self.config), self._apply_settings)

    def _save(self, config: UserConfig) -> None:
        self.config = config
        try:
            cfg.save_config(config)
        except HomefireError as exc:
            self.notify(str(exc), severity="error")

    def _apply_settings(self, new: UserConfig | None) -> None:
        if new is None:
            return
        old, assistant = self.config, self.assistant
        self._save(new)
        self.theme = new.theme
        self.settings.temperature = new.temperature
        if assistant is not None and new.system_prompt != old.system_prompt:
            assistant.system_prompt = new.system_prompt
            if not assistant.cartridges:
                assistant.conversation.system_prompt = new.system_prompt
        if new.guard != self.guard_level and assistant is not None:
            self.reload_guard(new.guard)
        else:
            self.guard_level = new.guard
        if assistant is not None and (new.n_ctx != self.n_ctx or new.threads != self.n_threads):
            self._begin_switch("reloading the model…")
            self.reload_engine(self.model_spec, new.n_ctx, new.threads)
            return
        self.notify("Settings saved.")
        self._status(self._state)

    @work(thread=True, exclusive=True, group="guard")
    def reload_guard(self, level: str) -> None:
        try:
            guard = session.load_guard(level)
        except HomefireError as exc:
            self.post_message(self.Done(error=str(exc)))
            return
        self.post_message(self.GuardLoaded(guard, level))

    def on_homefire_app_guard_loaded(self, event: GuardLoaded) -> None:
        assert self.assistant is not None
        self.assistant.use_guard(event.guard)
        self.guard_level = event.level
        off = "The guard is off: prompts go to the model unchecked."
        self.post_message(self.Done(off if event.guard is None else ""))

    # ----- slash commands ----------------------------------------------------------------------------

    async def slash(self, text: str) -> bool:
        """Run a slash command. False keeps the text in the box (an unknown command, say)."""
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        command = SLASH.get(word.lower())
        if command is None:
            self.notify(f"Unknown command {word}: /help lists them all.", severity="warning")
            return False
        if command.args and rest:  # e.g. /model NAME, /export json: the action takes what follows
            done = getattr(self, f"action_{command.action}")(rest)
            if inspect.isawaitable(done):
                await done
        else:
            await self.run_action(command.action)
        return True

    def transcript_messages(self) -> list[Any]:
        return list(self.query(ChatMessage))


def run_app(
    model: str | Path | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    guard: str | None = None,
    incognito: bool = False,
) -> None:
    app = HomefireApp(model=model, n_ctx=n_ctx, n_threads=n_threads, guard=guard, incognito=incognito)
    app.exit_promptly = True
    app.run()
