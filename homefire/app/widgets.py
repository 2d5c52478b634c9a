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

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)


class StatusLine(Static):
    """Model name, what it is doing, and the speed of the last answer."""

    def show(self, model: str, state: str, detail: str = "") -> None:
        parts = [f"[b]{model}[/b]", state] + ([detail] if detail else [])
        self.update("  ·  ".join(parts))
