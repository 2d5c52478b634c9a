"""Widgets of the chat screen: messages, the prompt box, the status line and the conversation sidebar."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, Markdown, OptionList, Static, TextArea
from textual.widgets.option_list import Option

_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)(?:^\1[ \t]*$|\Z)", re.S | re.M)


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, in order (an unclosed last fence counts: answers get cut)."""
    return [m.group(2).rstrip("\n") for m in _FENCE.finditer(markdown)]


def rss_mb() -> float:
    """This process's resident memory in MB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


class ChatMessage(Vertical, can_focus=True):
    """One message in the transcript. `text` always holds the full Markdown source.

    Focus one (Shift+Tab from the prompt, then Up/Down) to copy it (C), copy its code (K),
    see its stats and guard verdict (I), edit and resend a question (E) or regenerate an answer (R).
    """

    BINDINGS = [
        Binding("c", "copy", "Copy"),
        Binding("k", "copy_code", "Copy code"),
        Binding("i", "info", "Details"),
        Binding("e", "edit", "Edit & resend"),
        Binding("r", "regenerate", "Regenerate"),
        Binding("up", "neighbour(-1)", "Previous", show=False),
        Binding("down", "neighbour(1)", "Next", show=False),
        Binding("escape", "leave", "Back to prompt", show=False),
    ]

    class Action(Message):
        """A message asks the app to act on it (copy, edit, regenerate, info)."""

        def __init__(self, message: ChatMessage, action: str) -> None:
            super().__init__()
            self.message, self.action = message, action

    def __init__(self, role: str, text: str = "", **kwargs: Any) -> None:
        super().__init__(classes=f"message {role}", **kwargs)
        self.role = role
        self.text = text
        self.index: int | None = None  # its place in the assistant's conversation.messages, when it has one
        self.verdict: dict[str, Any] | None = None  # the guard's verdict on a question
        self.stats: dict[str, Any] | None = None  # an answer's generation stats
        self.facts: list[str] = []  # remembered facts recalled into an answer's prompt
        self._code_turn = 0

    def compose(self) -> ComposeResult:
        yield Markdown(self.text)
        yield Static("", classes="badge")

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    @property
    def badge(self) -> str:
        return str(self.query_one(".badge", Static).render())

    def set_badge(self, text: str) -> None:
        """A one-line note under the message (the guard's verdict on a prompt, facts used by an answer)."""
        badge = self.query_one(".badge", Static)
        badge.update(Text(text))
        badge.add_class("shown")

    def next_code_block(self) -> tuple[str, int, int] | None:
        """The code block to copy now (cycling on each press): (code, number, how many)."""
        blocks = code_blocks(self.text)
        if not blocks:
            return None
        n = self._code_turn % len(blocks)
        self._code_turn += 1
        return blocks[n], n + 1, len(blocks)

    def on_click(self, event: events.Click) -> None:
        from .tapbar import tap_mode

        if tap_mode(self.app):  # a phone: a tap on a message offers what its keys do
            event.stop()
            self.post_message(self.Action(self, "menu"))

    def action_copy(self) -> None:
        self.post_message(self.Action(self, "copy"))

    def action_copy_code(self) -> None:
        self.post_message(self.Action(self, "copy_code"))

    def action_info(self) -> None:
        self.post_message(self.Action(self, "info"))

    def action_edit(self) -> None:
        self.post_message(self.Action(self, "edit"))

    def action_regenerate(self) -> None:
        self.post_message(self.Action(self, "regenerate"))

    def action_leave(self) -> None:
        self.post_message(self.Action(self, "leave"))

    def action_neighbour(self, step: int) -> None:
        siblings = [m for m in self.parent.children if isinstance(m, ChatMessage)] if self.parent else []
        i = siblings.index(self) + step if self in siblings else -1
        if 0 <= i < len(siblings):
            siblings[i].focus()
            siblings[i].scroll_visible(animate=False)
        elif i >= len(siblings):
            self.post_message(self.Action(self, "leave"))


class PromptArea(TextArea):
    """The message box: grows with its text. Enter sends; Shift+Enter or Ctrl+J adds a line; Up/Down on
    the first/last line walk through what was sent before."""

    class Submitted(Message):
        def __init__(self, area: PromptArea, value: str) -> None:
            super().__init__()
            self.area, self.value = area, value

        @property
        def control(self) -> PromptArea:
            return self.area

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", compact=True, **kwargs)
        self.sent: list[str] = []
        self._walk: int | None = None  # position in history while walking it; None: editing a new message
        self._draft = ""

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def remember(self, text: str) -> None:
        if text and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._walk = None

    async def _on_key(self, event: events.Key) -> None:
        # Enter is handled here, in order with the typed characters: as a priority binding it ran as soon as
        # the app saw it, ahead of the characters still queued for this widget, and sent a half-typed line.
        if event.key in ("enter", "shift+enter", "ctrl+j"):
            event.prevent_default()
            event.stop()
            self.action_submit() if event.key == "enter" else self.action_newline()
            return
        row = self.cursor_location[0]
        if event.key == "up" and row == 0 and self.sent:
            if self._walk is None:
                self._draft, self._walk = self.text, len(self.sent)
            if self._walk > 0:
                self._walk -= 1
                self.value = self.sent[self._walk]
            event.prevent_default()
            event.stop()
            return
        if event.key == "down" and self._walk is not None and row == self.document.line_count - 1:
            self._walk += 1
            if self._walk >= len(self.sent):
                self._walk = None
                self.value = self._draft
            else:
                self.value = self.sent[self._walk]
            event.prevent_default()
            event.stop()
            return
        await super()._on_key(event)


@dataclass
class Status:
    """What the status line shows; the app fills it, the line formats it."""

    model: str = ""
    state: str = ""
    cartridges: str = ""
    guard: str = "normal"
    memory: str = "memory on"
    speed: str = ""
    detail: str = ""


class StatusLine(Static):
    """Model, what it is doing, cartridges, guard, memory, speed of the last answer, RAM.

    On a narrow terminal the least needed parts go first (RAM, then the time to first token, then the
    speed); the guard's and the memory's state always stay."""

    _shown: tuple[Status, float | None] | None = None

    def show(self, status: Status, ram_mb: float | None = None) -> None:
        self._shown = (status, ram_mb)
        guard = {"off": "[b reverse] GUARD OFF [/]", "normal": "guard"}.get(status.guard, f"guard {status.guard}")
        speed, _, first = status.speed.partition(" · ")
        # (priority: lower goes first when there is no room, markup)
        parts: list[tuple[int, str]] = [(9, f"[b]{_escape(status.model)}[/b]"), (9, _escape(status.state))]
        parts += [(8, _escape(p)) for p in (status.cartridges, status.detail) if p]
        parts += [(9, guard), (9, _escape(status.memory))]
        parts += [(3, _escape(speed))] if speed else []
        parts += [(1, _escape(first))] if first else []
        parts += [(2, f"{ram_mb:,.0f} MB")] if ram_mb else []
        width = (self.size.width or 80) - 2
        while len(parts) > 2 and len(Text.from_markup(" · ".join(p for _, p in parts))) > width:
            lowest = min(range(len(parts)), key=lambda i: parts[i][0])
            if parts[lowest][0] >= 8:
                break
            del parts[lowest]
        self.update(" · ".join(p for _, p in parts))

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)  # what fits has changed


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class Sidebar(Vertical):
    """Saved conversations, newest first, with a filter box. Enter opens one, F2 renames, Delete deletes."""

    BINDINGS = [
        Binding("f2", "rename", "Rename"),
        Binding("delete", "delete", "Delete"),
    ]

    class Chosen(Message):
        def __init__(self, conversation_id: int, action: str) -> None:
            super().__init__()
            self.conversation_id, self.action = conversation_id, action

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[dict[str, Any]] = []
        self._current: int | None = None  # the open conversation, marked in the list

    def compose(self) -> ComposeResult:
        yield Label("Chats", id="sidebar-title")
        yield Input(placeholder="filter chats", id="chat-filter", compact=True)
        yield OptionList(id="chats")

    def show(self, rows: list[dict[str, Any]], current: int | None = None) -> None:
        """rows: conversations as the memory store lists them (id, title), newest first."""
        self.rows, self._current = rows, current
        self._fill()

    def on_resize(self) -> None:
        self._fill()

    def _fill(self) -> None:
        current = self._current
        words = self.query_one("#chat-filter", Input).value.lower().split()
        chats = self.query_one("#chats", OptionList)
        chats.clear_options()
        room = max(8, (chats.size.width or 24) - 3)
        for row in self.rows:
            title = " ".join((row.get("title") or "untitled").split())
            if all(w in title.lower() for w in words):
                mark = "▸ " if row["id"] == current else "  "
                shown = title if len(title) <= room else title[: room - 1] + "…"
                chats.add_option(Option(Text(mark + shown), id=str(row["id"])))
        if not chats.option_count:
            chats.add_option(Option("no chats yet" if not self.rows else "no match", disabled=True))
        else:
            chats.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "chat-filter":
            event.stop()
            self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "chat-filter":
            event.stop()
            self.query_one("#chats", OptionList).focus()

    def selected(self) -> int | None:
        chats = self.query_one("#chats", OptionList)
        if chats.highlighted is None:
            return None
        option = chats.get_option_at_index(chats.highlighted)
        return int(option.id) if option.id is not None else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Chosen(int(event.option.id), "open"))

    def action_rename(self) -> None:
        cid = self.selected()
        if cid is not None:
            self.post_message(self.Chosen(cid, "rename"))

    def action_delete(self) -> None:
        cid = self.selected()
        if cid is not None:
            self.post_message(self.Chosen(cid, "delete"))
