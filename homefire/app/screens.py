"""Dialogs of the chat app."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, SelectionList
from textual.widgets.selection_list import Selection


class CartridgePicker(ModalScreen[list[str] | None]):
    """Choose the cartridges to answer from. Dismisses with the chosen names, or None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("a", "attach", "Attach"),
    ]

    def __init__(self, rows: list[tuple[str, str, bool]]) -> None:
        """rows: (name, description, currently attached)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Cartridges — Space toggles · A attaches · Esc cancels", id="picker-title")
            if self.rows:
                yield SelectionList[str](
                    *(Selection(f"{name}  {desc}", name, on) for name, desc, on in self.rows), id="picker-list"
                )
            else:
                yield Label("No cartridges yet. Build one with: homefire cartridge build NAME FILE…", id="picker-empty")
            with Horizontal(id="picker-buttons"):
                yield Button("Attach", variant="primary", id="attach")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.rows:
            self.query_one(SelectionList).focus()

    def action_attach(self) -> None:
        lists = self.query(SelectionList)
        self.dismiss(list(lists.first().selected) if lists else [])

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#attach")
    def attach_pressed(self) -> None:
        self.action_attach()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()
