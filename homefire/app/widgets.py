"""Widgets of the chat screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static


class ChatMessage(Vertical):
    """One message in the transcript. `text` always holds the full Markdown source."""

    def __init__(self, role: str, text: str = "", **kwargs: object) -> None:
        super().__init__(classes=f"message {role}", **kwargs)  # type: ignore[arg-type]
        self.role = role
        self.text = text

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
        """A one-line note under the message (the guard's verdict on a prompt)."""
        badge = self.query_one(".badge", Static)
        badge.update(text)
        badge.add_class("shown")


class StatusLine(Static):
    """Model name, what it is doing, and the speed of the last answer."""

    def show(self, model: str, state: str, detail: str = "") -> None:
        parts = [f"[b]{model}[/b]", state] + ([detail] if detail else [])
        self.update("  ·  ".join(parts))
