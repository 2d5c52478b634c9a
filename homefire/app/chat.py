"""The chat screen: the transcript, the prompt, streaming an answer, message actions, edit and regenerate.

The app hands it what it needs as attributes (the assistant, the open memory, whether the model is being
swapped) and it tells the app by messages (a slash command that is the app's to run). Its own commands
are the rows of commands.py not in APP_ACTIONS.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from .. import config as cfg
from ..errors import HomefireError
from . import commands, tapbar, widgets
from .commands import COMMANDS, SLASH, Command
from .widgets import ChatMessage, PromptArea, Sidebar, Status, StatusLine

if TYPE_CHECKING:
    from ..assistant import Assistant

GREETING = "Welcome to homefire. Everything you type stays on this device."
HINT = "F1 help · Ctrl+P all commands · Ctrl+B chats · Enter sends, Ctrl+J new line"
NARROW = 70  # below this many columns the chat list hides unless asked for
LOADING = "loading model…"


class ChatScreen(Screen[None]):
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding(c.key, c.action, c.title, show=c.key in ("escape", "ctrl+n"), priority=c.key.startswith("ctrl"))
        for c in COMMANDS
        if c.key and not c.app
    ]

    class Piece(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Finished(Message):
        def __init__(self, error: str | None = None) -> None:
            super().__init__()
            self.error = error

    class AppCommand(Message):
        """A slash command of the app's (/model NAME, /settings…): `args` is what followed it."""

        def __init__(self, command: Command, args: str) -> None:
            super().__init__()
            self.command, self.args = command, args

    def __init__(self, status: Status, sidebar: bool = True, touch: bool = False) -> None:
        super().__init__()
        self.touch = touch  # a touch screen: the tap bar shows and the greeting names taps (tapbar.py)
        self.status = status  # shared with the app: it fills in the model, guard and memory, this screen the rest
        self.assistant: Assistant | None = None  # set by the app once the model is loaded (and on every swap)
        self.memory: Any = None  # the open memory, set by the app (None: incognito, or not open yet)
        self.switching = False  # set by the app while it swaps the model, guard or cartridges
        self.answering = False
        self._cancel = threading.Event()
        self._stream: MarkdownStream | None = None
        self._reply: ChatMessage | None = None
        self._asked: ChatMessage | None = None
        self._started = 0.0
        self._first_piece = 0.0
        self._pieces = 0
        self._editing: int | None = None  # index of the question being edited, until it is resent
        self._sidebar_wanted = sidebar
        self._sidebar_forced = False  # shown by Ctrl+B on a narrow screen
        self._width = 80
        self._send_when_ready = False  # Enter was pressed while the model loaded
        self._sidebar = Sidebar(id="sidebar")
        self._transcript = VerticalScroll(id="transcript")
        placeholder = "Ask anything — Enter sends" + ("" if touch else ", Esc stops")
        self._prompt = PromptArea(id="prompt", placeholder=placeholder)

    @property
    def ready(self) -> bool:
        return self.assistant is not None

    # ----- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield self._sidebar
            with Vertical(id="main"):
                with self._transcript:
                    yield Static(GREETING, id="greeting")
                    yield Static(tapbar.HINT if self.touch else HINT, id="hint")
                yield self._prompt
        yield tapbar.TapBar(id="tapbar")
        yield StatusLine(id="status")

    def on_mount(self) -> None:
        self.fit(self._width)
        self._transcript.anchor()
        self._prompt.focus()
        self.set_interval(2.0, self.refresh_status)
        self.fill_sidebar()  # with what the app gave before this screen was composed (the app mounts first)
        self.refresh_status()

    def on_unmount(self) -> None:
        self.cancel_answer()

    def fit(self, width: int) -> None:
        """The terminal is `width` columns wide (told by the app, also while a dialog covers this screen)."""
        self._width = width
        narrow = width < NARROW
        self.set_class(narrow or self.touch, tapbar.TAPS_CLASS)
        self._sidebar.display = self._sidebar_wanted and (not narrow or self._sidebar_forced)

    def action_toggle_sidebar(self) -> None:
        sidebar = self._sidebar
        if self._width < NARROW:
            self._sidebar_forced = not sidebar.display
            self._sidebar_wanted = self._sidebar_wanted or self._sidebar_forced
        else:
            self._sidebar_wanted = not sidebar.display
        self.fit(self._width)
        if sidebar.display:
            self._sidebar.query_one("#chats").focus()
        else:
            self._prompt.focus()

    # ----- status ------------------------------------------------------------------------------------

    def show_state(self, state: str, detail: str = "") -> None:
        self.status.state, self.status.detail = state, detail
        for bar in self.query(tapbar.TapBar):
            bar.answering(self.answering)
        self.refresh_status()

    def refresh_status(self) -> None:
        lines = self.query(StatusLine)  # empty while the app shuts down and a worker still reports
        if lines:
            lines.first().show(self.status, widgets.rss_mb())

    def cancel_answer(self) -> None:
        """An answer still streaming stops at its next token."""
        self._cancel.set()

    def model_ready(self) -> None:
        """The app has set `assistant`: send what was typed while the model loaded."""
        if self._send_when_ready:
            self._send_when_ready = False
            area = self._prompt
            if area.text.strip():
                area.action_submit()

    # ----- sidebar -----------------------------------------------------------------------------------

    def fill_sidebar(self) -> None:
        store = self.memory.store if self.memory is not None else None
        rows = store.conversations(limit=500) if store is not None else []
        current = self.assistant.conversation.id if self.assistant else None
        self._sidebar.show(rows, current)

    @on(Sidebar.Chosen)
    async def sidebar_chosen(self, event: Sidebar.Chosen) -> None:
        from .screens import AskScreen

        if self.memory is None:
            return
        cid = event.conversation_id
        if event.action == "open":
            await self.open_conversation(cid)
            if self._sidebar_forced:  # a narrow screen: the list covered the chat just opened
                self.action_toggle_sidebar()
        elif event.action == "rename":
            title = self.memory.store.conversation(cid).get("title", "")
            self.app.push_screen(AskScreen("New title for this chat:", title), partial(self._rename, cid))
        elif event.action == "delete":
            self._ask_delete(cid)

    def _ask_delete(self, cid: int) -> None:
        from .screens import ConfirmScreen

        assert self.memory is not None
        title = self.memory.store.conversation(cid).get("title") or "untitled"
        self.app.push_screen(
            ConfirmScreen(f"Delete the chat “{title}”? It is erased from disk, not hidden."),
            partial(self._delete_chat, cid),
        )

    def _rename(self, cid: int, title: str | None) -> None:
        if title and self.memory is not None:
            self.memory.store.rename_conversation(cid, title)
            self.notify(f"Renamed to “{title}”.")
            self.fill_sidebar()

    async def _delete_chat(self, cid: int, yes: bool | None) -> None:
        if not yes or self.memory is None:
            return
        if self.answering and self.assistant and self.assistant.conversation.id == cid:
            self.notify(f"Stop the answer first ({tapbar.stop_hint(self)}).")
            return
        self.memory.store.delete_conversation(cid)
        if self.assistant is not None and self.assistant.conversation.id == cid:
            await self.action_new_chat()
        self.notify("Chat deleted.")
        self.fill_sidebar()

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
            self.notify(f"Still answering: {tapbar.say(self, 'press Esc', 'tap ' + tapbar.STOP)} to stop it first.")
            return
        if not self.ready or self.switching:
            if self.assistant is None and self.status.state == LOADING:
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
        transcript = self._transcript
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
        self.show_state("answering…")
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

    async def on_chat_screen_piece(self, event: Piece) -> None:
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
            self.refresh_status()

    async def on_chat_screen_finished(self, event: Finished) -> None:
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
            self.show_state("ready")
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
            self.show_state("ready", "blocked by the guard")
            self.fill_sidebar()
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
        self.show_state("stopped" if stats and stats.finish_reason == "cancelled" else "ready")
        self.fill_sidebar()

    # ----- message actions ---------------------------------------------------------------------------

    @on(ChatMessage.Action)
    async def message_action(self, event: ChatMessage.Action) -> None:
        m = event.message
        if event.action == "menu":  # tapped: its actions as buttons; then back to the prompt, as Escape does
            self.app.push_screen(tapbar.MessageMenu(m), partial(tapbar.message_chosen, m))
        elif event.action == "leave":
            self._prompt.focus()
        elif event.action == "copy":
            self._copy(m.text, "the message")
        elif event.action == "copy_code":
            self._copy_code(m)
        elif event.action == "info":
            self._info(m)
        elif event.action == "edit":
            if m.role != "user" or m.index is None:
                self.notify(f"Only your questions can be edited ({tapbar.say(self, 'E', 'tap')} on one of them).")
                return
            self._edit(m)
        elif event.action == "regenerate":
            last = self._last_answer()
            if m.role != "assistant" or last is not m:
                how = tapbar.say(self, "R on it, or Ctrl+G", "tap it, then Regenerate")
                self.notify(f"Only the last answer can be regenerated ({how}).")
                return
            await self.action_regenerate()

    def _copy(self, text: str, what: str) -> None:
        if not text:
            self.notify("Nothing to copy yet.")
            return
        self.app.copy_to_clipboard(text)
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
        self.app.push_screen(InfoScreen(describe_message(m.role, verdict, m.stats, m.facts)))

    def _edit(self, m: ChatMessage) -> None:
        if self.answering:
            self.notify(f"Stop the answer first ({tapbar.stop_hint(self)}).")
            return
        self._editing = m.index
        area = self._prompt
        area.value = m.text
        area.focus()
        self.show_state(
            "editing",
            "Enter resends from here on · " + tapbar.say(self, "Esc in the list cancels", f"tap {tapbar.STOP} cancels"),
        )

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

    # ----- actions (the commands table's rows not in APP_ACTIONS) ----------------------------------------

    def action_stop(self) -> None:
        if self.answering:
            self._cancel.set()
        elif self._editing is not None:
            self._editing = None
            self._prompt.value = ""
            self.show_state("ready")

    async def action_new_chat(self) -> None:
        if self.answering:
            self.notify(f"Stop the answer first ({tapbar.stop_hint(self)}).")
            return
        if self.assistant:
            self.assistant.new_conversation()
        self._editing = None
        await self._transcript.query(ChatMessage).remove()
        self.show_state("ready" if self.ready else LOADING)
        self.fill_sidebar()
        self._prompt.focus()

    async def action_regenerate(self) -> None:
        if self.answering or not self.ready or self.switching:
            self.notify(f"Wait for the model (or {tapbar.stop_hint(self)} to stop the answer) first.")
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
        transcript = self._transcript
        await transcript.mount(ChatMessage("note", text))
        transcript.scroll_end(animate=False)

    def action_remember(self) -> None:
        self._prompt.value = "/remember "

    def action_forget(self) -> None:
        self._prompt.value = "/forget "

    def action_rename_chat(self, title: str = "") -> None:
        from .screens import AskScreen

        cid = self.assistant.conversation.id if self.assistant else None
        if cid is None or self.memory is None:
            self.notify("This chat is not saved yet (or you are incognito): nothing to rename.")
            return
        if title:
            self._rename(cid, title)
        else:
            current = self.memory.store.conversation(cid).get("title") or ""
            self.app.push_screen(AskScreen("Title for this chat:", current), partial(self._rename, cid))

    def action_delete_chat(self) -> None:
        """The chat list's Delete, for the open chat: what a phone, with no list keys, deletes a chat with."""
        cid = self.assistant.conversation.id if self.assistant else None
        if cid is None or self.memory is None:
            self.notify("This chat is not saved yet (or you are incognito): nothing to delete.")
            return
        self._ask_delete(cid)

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

    def action_search_history(self, query: str = "") -> None:
        from .memory_screens import HistorySearch

        if self.memory is None or (self.assistant is not None and self.assistant.memory is None):
            self.notify("Incognito: no conversations are saved." if self.ready else "The memory is still opening.")
            return

        async def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                await self.open_conversation(conversation_id)

        self.app.push_screen(HistorySearch(self.memory, query), chosen)

    async def open_conversation(self, conversation_id: int) -> None:
        """Show a saved conversation and go on with it."""
        if self.answering or self.assistant is None:
            self.notify(
                f"Stop the answer first ({tapbar.stop_hint(self)})."
                if self.answering
                else "The model is still loading."
            )
            return
        try:
            self.assistant.resume(conversation_id)
        except HomefireError as exc:
            self.notify(str(exc), severity="error")
            return
        transcript = self._transcript
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
        self.show_state("ready", f"chat {conversation_id}")
        self.fill_sidebar()
        self._prompt.focus()

    # ----- slash commands ----------------------------------------------------------------------------

    async def slash(self, text: str) -> bool:
        """Run a slash command (the app's go up as AppCommand). False keeps the text in the box (unknown)."""
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        command = SLASH.get(word.lower())
        if command is None:
            self.notify(f"Unknown command {word}: /help lists them all.", severity="warning")
            return False
        if command.app:
            self.post_message(self.AppCommand(command, rest))
        else:
            await commands.run(self, command, rest)
        return True
