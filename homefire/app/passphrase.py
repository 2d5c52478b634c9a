"""Unlocking an encrypted memory database in the chat app: a modal that asks for the passphrase.

The app opens its memory with `Memory.open()`; when that raises `MemoryLocked` it pushes
`PassphraseScreen.for_memory(str(error))` and gets back the unlocked `Memory`, or None when the
user pressed Escape to go on without memory (incognito: nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from ..errors import HomefireError
from .tapbar import TapButton, say, touched


class PassphraseScreen(ModalScreen[Any]):
    """Asks for a passphrase and tries `unlock(passphrase)` with it in a worker thread (SQLCipher's key
    derivation takes a fraction of a second). Dismissed with what `unlock` returned; a wrong passphrase
    (any HomefireError) is shown in the screen, which stays. Escape dismisses it with None."""

    DEFAULT_CSS = """
    PassphraseScreen { align: center middle; }
    PassphraseScreen > #passphrase { width: 64; height: auto; padding: 1 2; border: thick $accent; background: $panel; }
    PassphraseScreen #passphrase-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Go on without memory")]

    def __init__(self, unlock: Callable[[str], Any], reason: str = "") -> None:
        super().__init__()
        self.unlock = unlock
        self.reason = reason or "The memory database is encrypted."
        self.tries = 0

    @classmethod
    def for_memory(cls, reason: str = "", path: Path | None = None) -> PassphraseScreen:
        """The screen that unlocks homefire's memory database: dismissed with the opened Memory (or None)."""
        from ..memory import Memory

        return cls(lambda passphrase: Memory.open(path, passphrase=passphrase), reason)

    def compose(self) -> ComposeResult:
        with Vertical(id="passphrase"):
            yield Label("Unlock memory", id="passphrase-title")
            yield Label(self.reason, id="passphrase-reason")
            yield Input(
                password=True,
                placeholder="passphrase — Enter unlocks" + say(self, ", Esc goes on without memory", ""),
                id="passphrase-input",
            )
            yield Label("", id="passphrase-error")
            if touched(self):  # no Escape key on a phone
                yield TapButton("Go on without memory", id="passphrase-skip", classes="tap")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#passphrase-input")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self._failed("type the passphrase first" + say(self, " (Esc goes on without memory)", ""))
            return
        event.input.disabled = True
        self.query_one("#passphrase-error", Label).update("unlocking…")
        self._try(event.value)

    @work(thread=True, exclusive=True, group="unlock")
    def _try(self, passphrase: str) -> None:
        try:
            result = self.unlock(passphrase)
        except HomefireError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.dismiss, result)

    def _failed(self, message: str) -> None:
        self.tries += 1
        self.query_one("#passphrase-error", Label).update(message)
        box = self.query_one(Input)
        box.disabled = False
        box.value = ""
        box.focus()

    @on(Button.Pressed, "#passphrase-skip")
    def action_cancel(self) -> None:
        self.dismiss(None)
