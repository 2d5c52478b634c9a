"""The memory screens of the chat app: the facts homefire remembers (Ctrl+R) and search over past chats (Ctrl+F)."""

from __future__ import annotations

import re

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, OptionList
from textual.widgets.option_list import Option

from ..errors import HomefireError
from ..memory import Hit, Memory
from .tapbar import TapActions, say, touched

MARK = ("\x02", "\x03")  # around matched words in snippets; never typed by a user, so never mistaken for text


def hit_text(hit: Hit) -> Text:
    """A search result as styled text: the user's words are never read as markup."""
    out = Text()
    out.append(f"#{hit.conversation_id} ", "bold")
    out.append(f"{hit.date}  {hit.title}\n  {hit.role}: ")
    for part in re.split(f"({MARK[0]}.*?{MARK[1]})", hit.snippet):
        if part.startswith(MARK[0]):
            out.append(part[1:-1], "bold reverse")
        else:
            out.append(part)
    return out


class MemoryScreen(ModalScreen[None]):
    """See, add, edit, pin and forget remembered facts. Changes are saved at once."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("p", "pin", "Pin/unpin"),
        Binding("d,delete", "forget", "Forget"),
        Binding("e", "edit", "Edit"),
        Binding("a", "add", "Add"),
    ]

    def __init__(self, memory: Memory) -> None:
        super().__init__()
        self.memory = memory
        self.editing: int | None = None  # the fact the input is editing; None: the input adds a new one

    def compose(self) -> ComposeResult:
        with Vertical(id="memory"):
            keys = "E edit · P pin · D forget · A add · Esc close"
            title = say(self, f"What homefire remembers — {keys}", "Tap a fact, then what to do")
            yield Label(title, id="memory-title")
            yield DataTable(id="facts", cursor_type="row", zebra_stripes=True)
            yield Input(placeholder="A new fact, e.g. my server is at home.lan — Enter saves", id="fact-input")
            if touched(self):
                yield TapActions(self.BINDINGS)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("id", "pinned", "last used", "fact")
        self.refresh_facts()
        table.focus()

    def refresh_facts(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for f in self.memory.store.facts():
            used = (f["last_used"] or "never")[:16].replace("T", " ")
            table.add_row(str(f["id"]), "📌" if f["pinned"] else "", used, f["text"], key=str(f["id"]))

    def selected(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def action_close(self) -> None:
        self.dismiss(None)

    def action_pin(self) -> None:
        fid = self.selected()
        if fid is not None:
            self.memory.store.update_fact(fid, pinned=not self.memory.store.fact(fid)["pinned"])
            self.refresh_facts()

    def action_forget(self) -> None:
        fid = self.selected()
        if fid is not None:
            text = self.memory.store.fact(fid)["text"]
            self.memory.store.delete_fact(fid)
            self.refresh_facts()
            self.notify(f"Forgotten: {text}")

    def action_edit(self) -> None:
        fid = self.selected()
        if fid is not None:
            self.editing = fid
            box = self.query_one("#fact-input", Input)
            box.value = self.memory.store.fact(fid)["text"]
            box.focus()

    def action_add(self) -> None:
        self.editing = None
        box = self.query_one("#fact-input", Input)
        box.value = ""
        box.focus()

    @on(Input.Submitted, "#fact-input")
    def save(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        try:
            if self.editing is not None:
                flag = self.memory.edit_fact(self.editing, text)
                self.notify(
                    f"Fact {self.editing} saved" + (" (flagged by the guard: never recalled)." if flag else ".")
                )
            else:
                from ..memory.facts import explicit

                fact, status = self.memory.remember(explicit(text))
                self.notify(f"{status.capitalize()}: {fact.text}")
        except HomefireError as exc:
            self.notify(str(exc), severity="error")
            return
        event.input.value = ""
        self.editing = None
        self.refresh_facts()
        self.query_one(DataTable).focus()


class HistorySearch(ModalScreen[int | None]):
    """Search every saved conversation; Enter on a result dismisses with its conversation id."""

    BINDINGS = [Binding("escape", "close", "Close")]

    class Found(Message):
        def __init__(self, query: str, hits: list[Hit], error: str | None = None) -> None:
            super().__init__()
            self.query, self.hits, self.error = query, hits, error

    def __init__(self, memory: Memory, query: str = "") -> None:
        super().__init__()
        self.memory = memory
        self.query_text = query
        self.hits: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="history"):
            yield Label(
                "Search past conversations — Enter searches, then pick one to go on with it", id="history-title"
            )
            yield Input(placeholder="words or meaning, e.g. peanut allergy", id="history-query")
            yield OptionList(id="history-results")

    def on_mount(self) -> None:
        box = self.query_one("#history-query", Input)
        box.focus()
        if self.query_text.strip():
            box.value = self.query_text
            self.run_search(self.query_text)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#history-query")
    def search(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.run_search(event.value)

    @work(thread=True, exclusive=True, group="history-search")
    def run_search(self, query: str) -> None:
        # In a worker: the first search loads the encoder and the vectors.
        try:
            hits = self.memory.search(query, limit=20, mark=MARK)
        except HomefireError as exc:
            self.post_message(self.Found(query, [], str(exc)))
            return
        self.post_message(self.Found(query, hits))

    def on_history_search_found(self, event: Found) -> None:
        results = self.query_one("#history-results", OptionList)
        results.clear_options()
        self.hits = event.hits
        if event.error:
            self.notify(event.error, severity="error")
            return
        if not event.hits:
            results.add_option(Option(f"Nothing found for “{event.query}”.", disabled=True))
            return
        for i, h in enumerate(event.hits):
            results.add_option(Option(hit_text(h), id=str(i)))
        results.highlighted = 0
        results.focus()

    @on(OptionList.OptionSelected, "#history-results")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.hits[int(event.option.id)].conversation_id)
