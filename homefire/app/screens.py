"""Dialogs of the chat app: cartridges, models, settings, help, and small confirm/ask/info boxes.

Long work (cartridge builds, model pulls, verification) runs in worker threads and shows a progress bar;
the UI thread only renders.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Markdown,
    ProgressBar,
    Select,
    SelectionList,
    Static,
    TextArea,
)
from textual.widgets.selection_list import Selection

from ..config import GUARD_CHOICES, THEMES, UserConfig
from ..errors import Cancelled, ConfigError, HomefireError
from .commands import COMMANDS, LOCAL_KEYS, key_label
from .tapbar import TapActions, say, touched


class Progressed(Message):
    """A worker's progress: done of total (total 0 = unknown), and what it is doing."""

    def __init__(self, done: int, total: int, what: str) -> None:
        super().__init__()
        self.done, self.total, self.what = done, total, what


class Worked(Message):
    """A worker finished: a note to show, or an error."""

    def __init__(self, note: str = "", error: str | None = None, result: Any = None) -> None:
        super().__init__()
        self.note, self.error, self.result = note, error, result


class BusyScreen(ModalScreen[Any]):
    """A dialog that runs one long job at a time in a worker and shows its progress."""

    busy = False
    stop: threading.Event  # set to stop the running job at its next step, where the job can stop

    def progress_callback(self, what: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.post_message(Progressed(done, total, what))

        return report

    def on_progressed(self, event: Progressed) -> None:
        bar = self.query_one(ProgressBar)
        bar.add_class("shown")
        bar.update(total=event.total or None, progress=event.done)
        self.query_one(".job", Label).update(event.what)

    def start_job(self, what: str) -> bool:
        if self.busy:
            self.notify("One thing at a time: wait for the current job to finish.")
            return False
        self.busy = True
        self.stop = threading.Event()
        self.query_one(".job", Label).update(what)
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("shown")
        return True

    def on_worked(self, event: Worked) -> None:
        self.busy = False
        self.query_one(ProgressBar).remove_class("shown")
        self.query_one(".job", Label).update("")
        if event.error:
            self.notify(event.error, severity="error", timeout=10)
        elif event.note:
            self.notify(event.note)
        self.refresh_rows()

    def refresh_rows(self) -> None:
        pass

    @work(thread=True, exclusive=True, group="dialog-job")
    def run_job(self, job: Callable[[], tuple[str, Any]]) -> None:
        """Run job() in a thread; it returns (note, result) or raises HomefireError."""
        try:
            note, result = job()
        except Cancelled:
            self.post_message(Worked("Stopped: nothing was changed."))
            return
        except HomefireError as exc:
            self.post_message(Worked(error=str(exc)))
            return
        except OSError as exc:
            self.post_message(Worked(error=f"{exc.strerror or exc}: nothing was changed"))
            return
        self.post_message(Worked(note, result=result))


class CartridgeScreen(BusyScreen):
    """Cartridges: list with their state (stale ones marked), attach/detach, build, rebuild, remove.

    Dismisses with the names to answer from ([] = none), or None if closed without attaching.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("a", "attach", "Attach selected"),
        Binding("b", "build", "Build new"),
        Binding("u", "rebuild", "Rebuild stale"),
        Binding("x", "remove", "Remove"),
    ]

    def __init__(self, engine: Any, attached: list[str], guard: Any = None) -> None:
        super().__init__()
        self.engine, self.attached, self.guard = engine, set(attached), guard

    def compose(self) -> ComposeResult:
        with Vertical(id="cartridges", classes="dialog"):
            keys = "Space select · A attach · B build · U rebuild stale · X remove · Esc close"
            yield Label(f"Cartridges — {say(self, keys, 'tap to select, then what to do')}", classes="dialog-title")
            yield SelectionList[str](id="cartridge-list")
            yield Label("", id="cartridge-empty")
            yield Input(
                placeholder="NAME FILE… — e.g. notes ~/notes.md ~/todo.txt (Enter builds)",
                id="build-input",
                compact=True,
            )
            yield Label("", classes="job")
            yield ProgressBar(show_eta=False, id="cartridge-progress")
            if touched(self):
                yield TapActions(self.BINDINGS)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Attach", variant="primary", id="attach", compact=True)
                yield Button("Close", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.refresh_rows()
        items = self.query_one(SelectionList)
        (items if items.display else self.query_one("#build-input", Input)).focus()

    def refresh_rows(self) -> None:
        from ..engine import cartridge as cartridges

        items = self.query_one(SelectionList)
        chosen = set(items.selected) if items.option_count else self.attached
        items.clear_options()
        carts = cartridges.all_cartridges()
        for c in carts:
            state = cartridges.status(c)
            mark = "⚠ " if state != "ok" else ""
            label = Text(f"{mark}{c.name}  {c.tokens:,} tokens · {c.kv_type} · {state}")
            items.add_option(Selection(label, c.name, c.name in chosen))
        items.display = bool(carts)
        if carts and items.highlighted is None:
            items.highlighted = 0
        self.query_one("#cartridge-empty", Label).update(
            "" if carts else "No cartridges yet: type a name and files below and press Enter to build one."
        )
        self.query_one("#cancel", Button).label = "Stop" if self.busy else "Close"

    def start_job(self, what: str) -> bool:
        started = super().start_job(what)
        self.query_one("#cancel", Button).label = "Stop" if self.busy else "Close"  # Esc and the button stop it
        return started

    def on_worked(self, event: Worked) -> None:
        super().on_worked(event)
        items = self.query_one(SelectionList)
        if event.result is not None and items.display:
            items.select(event.result.name)  # just built: ready to attach with A
            items.focus()

    def action_attach(self) -> None:
        if self.busy:
            self.notify("Wait for the build to finish.")
            return
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        if self.busy:
            self.stop.set()  # the build stops at its next batch of tokens; its worker then says so
            self.notify("Stopping the build…")
            return
        self.dismiss(None)

    def action_build(self) -> None:
        self.query_one("#build-input", Input).focus()

    @on(Input.Submitted, "#build-input")
    def build_submitted(self, event: Input.Submitted) -> None:
        try:
            words = shlex.split(event.value)
        except ValueError:
            words = []
        if len(words) < 2:
            self.notify("Type a name, then one or more files: e.g. notes ~/notes.md", severity="warning")
            return
        name, paths = words[0], [str(Path(p).expanduser()) for p in words[1:]]
        if not self.start_job(f"building {name}…"):
            return
        event.input.value = ""
        from ..engine import cartridge as cartridges

        report = self.progress_callback(f"building {name}: reading the documents")

        def job() -> tuple[str, Any]:
            cart = cartridges.build(
                name, paths, self.engine, progress=report, chunk=True, guard=self.guard, cancel=self.stop
            )
            flagged = cart.manifest.get("guard_flags")
            extra = " (the guard flagged a source: it is read as data, never as instructions)" if flagged else ""
            return f"Built {cart.name}: {cart.tokens:,} tokens{extra}. A attaches it.", cart

        self.run_job(job)

    def _highlighted(self) -> str | None:
        items = self.query_one(SelectionList)
        if items.highlighted is None or not items.option_count:
            return None
        return str(items.get_option_at_index(items.highlighted).value)

    def action_rebuild(self) -> None:
        from ..engine import cartridge as cartridges

        name = self._highlighted()
        if name is None or not self.start_job(f"rebuilding {name}…"):
            return
        report = self.progress_callback(f"rebuilding {name}")

        def job() -> tuple[str, Any]:
            cart = cartridges.rebuild(name, self.engine, progress=report, guard=self.guard, cancel=self.stop)
            return f"Rebuilt {cart.name} from its sources.", cart

        self.run_job(job)

    def action_remove(self) -> None:
        from ..engine import cartridge as cartridges

        name = self._highlighted()
        if name is None or self.busy:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                try:
                    cartridges.remove(name)
                except HomefireError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.attached.discard(name)
                self.notify(f"Removed cartridge {name}.")
                self.refresh_rows()

        self.app.push_screen(ConfirmScreen(f"Remove cartridge {name}? Its saved state is deleted."), confirmed)

    @on(Button.Pressed, "#attach")
    def attach_pressed(self) -> None:
        self.action_attach()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()


class ModelScreen(BusyScreen):
    """Installed models: switch (Enter), details (I), verify (V), remove (X), pull (P). Dismisses with a
    model name to switch to, or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "switch", "Switch to", priority=False),
        Binding("i", "info", "Details"),
        Binding("v", "verify", "Verify"),
        Binding("x", "remove", "Remove"),
        Binding("p", "pull", "Pull"),
    ]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="models", classes="dialog"):
            keys = "Enter switch · I details · V verify · X remove · P pull · Esc close"
            yield Label(f"Models — {say(self, keys, 'tap a model, then what to do')}", classes="dialog-title")
            yield DataTable(id="model-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="model-info")
            yield Input(
                placeholder="pull: a catalogue name, or REPO FILE.gguf — the only step that uses the network",
                id="pull-input",
                compact=True,
            )
            yield Label("", classes="job")
            yield ProgressBar(show_eta=False, id="model-progress")
            if touched(self):
                yield TapActions(self.BINDINGS)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", "name", "source", "size")
        self.refresh_rows()
        table.focus()

    def refresh_rows(self) -> None:
        from ..models import store

        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        for i, m in enumerate(store.installed()):
            size = m.path.stat().st_size / 1e6 if m.path.exists() else 0
            mark = "●" if m.name == self.current else ""
            table.add_row(mark, m.name, m.source, f"{size:,.0f} MB", key=m.name)
            if m.name == keep:
                table.move_cursor(row=i)

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def action_close(self) -> None:
        self.dismiss(None)

    def action_switch(self) -> None:
        name = self.selected()
        if name is None or self.busy:
            return
        if name == self.current:
            self.notify(f"{name} is the model in use.")
            return
        self.dismiss(name)

    @on(DataTable.RowSelected, "#model-table")
    def row_selected(self) -> None:
        self.action_switch()

    def action_info(self) -> None:
        from ..models import store

        name = self.selected()
        if name is None:
            return
        try:
            info = store.resolve(name).info()
        except HomefireError as exc:
            self.query_one("#model-info", Static).update(Text(str(exc)))
            return
        ctx = f"{info.context_length:,}" if info.context_length else "?"
        self.query_one("#model-info", Static).update(
            Text(
                f"{name}: {info.architecture} · {info.file_size / 1e6:,.0f} MB · trained context {ctx} · "
                f"chat template {'yes' if info.chat_template else 'no (ChatML)'}"
            )
        )

    def action_verify(self) -> None:
        from ..models import store

        name = self.selected()
        if name is None or not self.start_job(f"verifying {name}…"):
            return
        report = self.progress_callback(f"verifying {name} (sha256)")

        def job() -> tuple[str, Any]:
            model = store.resolve(name)
            digest = store.verify(model, progress=report, force=True)
            return f"{name}: verified, sha256 {digest[:16]}…", None

        self.run_job(job)

    def action_remove(self) -> None:
        from ..models import store

        name = self.selected()
        if name is None or self.busy:
            return
        if name == self.current:
            self.notify("That model is in use: switch to another one first.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                try:
                    store.remove(name)
                except HomefireError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.notify(f"Removed {name}.")
                self.refresh_rows()

        self.app.push_screen(ConfirmScreen(f"Remove the model {name}? Its file is deleted."), confirmed)

    def action_pull(self) -> None:
        self.query_one("#pull-input", Input).focus()

    @on(Input.Submitted, "#pull-input")
    def pull_submitted(self, event: Input.Submitted) -> None:
        from ..models.pull import pull

        words = event.value.split()
        if not words or len(words) > 2:
            self.notify("Type a catalogue name, or a repo and a .gguf file name.", severity="warning")
            return
        if not self.start_job(f"pulling {' '.join(words)}…"):
            return
        event.input.value = ""
        report = self.progress_callback(f"downloading {' '.join(words)}")

        def job() -> tuple[str, Any]:
            model = pull(words[0], words[1] if len(words) > 1 else None, progress=report)
            return f"{model.name}: downloaded and verified. Enter switches to it.", model

        self.run_job(job)


class SettingsScreen(ModalScreen[UserConfig | None]):
    """The user's settings, saved to the config file with Ctrl+S (or the Save button)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, config: UserConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        c = self.config
        with VerticalScroll(id="settings", classes="dialog"):
            keys = "Tab moves · Ctrl+S saves · Esc cancels"
            yield Label(f"Settings — {say(self, keys, 'Save keeps them, Cancel does not')}", classes="dialog-title")
            yield Label("System prompt (who the assistant is)")
            yield TextArea(c.system_prompt, id="set-system", soft_wrap=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Temperature (blank: auto)")
                    yield Input("" if c.temperature is None else str(c.temperature), id="set-temperature", compact=True)
                with Vertical():
                    yield Label("Context (tokens)")
                    yield Input(str(c.n_ctx), id="set-ctx", type="integer", compact=True)
                with Vertical():
                    yield Label("Threads (blank: all)")
                    yield Input("" if c.threads is None else str(c.threads), id="set-threads", compact=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Guard")
                    yield Select(
                        [(g, g) for g in GUARD_CHOICES], value=c.guard, allow_blank=False, id="set-guard", compact=True
                    )
                with Vertical():
                    yield Label("Theme")
                    yield Select(
                        [(t.removeprefix("homefire-"), t) for t in THEMES],
                        value=c.theme,
                        allow_blank=False,
                        id="set-theme",
                        compact=True,
                    )
            yield Label("", id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#set-system", TextArea).focus()

    def read(self) -> UserConfig:
        def number(widget_id: str, kind: type) -> Any:
            raw = self.query_one(widget_id, Input).value.strip()
            if not raw:
                return None
            try:
                return kind(raw)
            except ValueError:
                label = {"#set-temperature": "temperature", "#set-ctx": "context size", "#set-threads": "threads"}
                raise ConfigError(f"{label[widget_id]} must be a number (got {raw!r})") from None

        ctx = number("#set-ctx", int)
        return self.config.changed(
            system_prompt=self.query_one("#set-system", TextArea).text,
            temperature=number("#set-temperature", float),
            n_ctx=ctx if ctx is not None else 4096,
            threads=number("#set-threads", int),
            guard=self.query_one("#set-guard", Select).value,
            theme=self.query_one("#set-theme", Select).value,
        )

    def action_save(self) -> None:
        try:
            config = self.read()
        except ConfigError as exc:
            self.query_one("#settings-error", Label).update(Text(str(exc)))
            self.notify(str(exc), severity="error")
            return
        self.dismiss(config)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()


def help_markdown() -> str:
    lines = ["# Keys and commands", "", "| key | slash command | what it does |", "|---|---|---|"]
    for c in COMMANDS:
        key = key_label(c.key) if c.key else ""
        slash = f"`{c.slash}{' ' + c.args if c.args else ''}`" if c.slash else ""
        lines.append(f"| {key} | {slash} | {c.title}: {c.help} |")
    lines += ["", "| where | key | what it does |", "|---|---|---|"]
    lines += [f"| {where} | {key_label(key) if '/' not in key else key} | {what} |" for where, key, what in LOCAL_KEYS]
    lines += ["", "Everything stays on this device: no network is used unless you pull a model."]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Markdown(help_markdown())

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "no", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog small"):
            yield Label(Text(self.question))
            with Horizontal(classes="dialog-buttons"):
                yield Button(say(self, "Yes (Y)", "Yes"), variant="error", id="yes", compact=True)
                yield Button(say(self, "No (N)", "No"), id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class AskScreen(ModalScreen[str | None]):
    """One line of text (a chat title, say); Enter saves, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(id="ask", classes="dialog small"):
            yield Label(Text(self.question))
            yield Input(self.value, id="ask-input", compact=True)

    @on(Input.Submitted, "#ask-input")
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class InfoScreen(ModalScreen[None]):
    """Details on demand (an answer's stats and the guard's verdict), as Markdown."""

    BINDINGS = [Binding("escape,i,q", "close", "Close")]

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.text = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="info", classes="dialog"):
            yield Markdown(self.text)

    def on_mount(self) -> None:
        self.query_one("#info").focus()

    def action_close(self) -> None:
        self.dismiss(None)


def describe_message(role: str, verdict: dict[str, Any] | None, stats: dict[str, Any] | None, facts: list[str]) -> str:
    """The details of one message for InfoScreen."""
    lines = [f"# {'Question' if role == 'user' else 'Answer'} details", ""]
    if verdict:
        decision = "allowed" if verdict.get("allowed") else "**blocked** (never sent to the model)"
        lines += [
            "## Guard",
            f"- decision: {decision}",
            f"- label: {verdict.get('label')} (score {verdict.get('score', 0):.2f})",
            f"- checked in {verdict.get('latency_ms', 0):.1f} ms",
        ]
        if verdict.get("category"):
            lines.append(f"- category: {verdict['category']}")
        if verdict.get("reason"):
            lines.append(f"- reason: {escape(str(verdict['reason']))}")
        lines.append("")
    if stats:
        lines += [
            "## Generation",
            f"- tokens: {stats.get('completion_tokens', 0)} written, "
            f"{stats.get('prompt_tokens', 0)} in the prompt "
            f"({stats.get('prompt_tokens_evaluated', stats.get('prompt_tokens', 0))} read anew)",
            f"- speed: {stats.get('decode_tokens_per_s', 0):.1f} tokens/s",
            f"- first token after {stats.get('time_to_first_token_s', 0):.2f} s",
            f"- ended: {stats.get('finish_reason', '?')}",
            "",
        ]
    if facts:
        lines += ["## Facts recalled into the prompt"] + [f"- {f}" for f in facts] + [""]
    if len(lines) == 2:
        lines.append("Nothing recorded for this message (a note, or a message from before this session).")
    return "\n".join(lines)
