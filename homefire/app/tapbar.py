"""Taps instead of keys: the tap bar, the menu of every command, a message's actions, closing a dialog.

Shown on a narrow screen and whenever the app knows it runs on a touch device (`homefire chat --touch`; the
browser route passes it when the page's pointer is coarse). Termux passes a tap as a mouse click, so
the same bar works there. Everything here is made from the command table (commands.py) and the
message's own key bindings: the bar, the keys, the palette and the slash commands cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option

from .commands import COMMANDS, MENU, TAPS, Command, run
from .widgets import code_blocks

TAPS_CLASS = "-taps"  # on the node that shows the bar (narrow or touch)
BAR_ORDER = ("new_chat", "toggle_sidebar", "stop")  # left to right: the thumb's usual reach ends on Stop
NEW_LINE = "↵ Line"
MORE = "⋯ More"
HINT = (
    "Tap ≡ Chats for your chats, ⋯ More for every command, a message for its actions, beside a dialog to close"
    " it. Enter sends, ↵ Line adds a line."
)


STOP = next(c.tap for c in COMMANDS if c.action == "stop")


def touched(node: Any) -> bool:
    """The app runs on a touch screen (`--touch`, or the browser page's coarse pointer): it names taps, not keys."""
    return bool(getattr(node, "touch", False) or getattr(node.app, "touch", False))


def say(node: Any, keys: str, taps: str) -> str:
    """What to tell the user: `keys` on a keyboard, `taps` on a touch screen."""
    return taps if touched(node) else keys


def stop_hint(node: Any) -> str:
    """How to stop the answer being written, as this user would."""
    return say(node, "Esc", f"tap {STOP}")


class TapButton(Button, can_focus=False):
    """A button that leaves the focus (and a phone's keyboard) where it was: on the prompt."""

    def on_mount(self) -> None:
        self.styles.line_pad = 0  # all of a narrow button's width for its label (CSS cannot say 0)


def bar_commands() -> list[Command]:
    return sorted(TAPS, key=lambda c: BAR_ORDER.index(c.action) if c.action in BAR_ORDER else len(BAR_ORDER))


async def run_command(node: Any, action: str) -> None:
    """Run a command of the table where it lives: the app's own on the app, the others on the chat screen."""
    command = next(c for c in COMMANDS if c.action == action)
    await run(node.app if command.app else node.screen, command)


class TapBar(Horizontal):
    """New chat, chats, stop, a new line in the prompt and a menu of everything else; each button 3 rows high."""

    def compose(self) -> ComposeResult:
        for c in bar_commands():
            yield TapButton(c.tap, id=f"tap-{c.action}", classes="tap")
        yield TapButton(NEW_LINE, id="tap-newline", classes="tap")
        yield TapButton(MORE, id="tap-more", classes="tap")

    def answering(self, on: bool) -> None:
        """While an answer streams, Stop stands out (one tap stops it)."""
        try:
            stop = self.query_one("#tap-stop", TapButton)
        except NoMatches:
            return
        stop.variant = "error" if on else "default"

    @on(Button.Pressed)
    async def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        name = event.button.id or ""
        if name == "tap-more":
            self.app.push_screen(CommandMenu(), self._chosen)
        elif name == "tap-newline":
            try:
                self.screen.query_one("#prompt").action_newline()  # type: ignore[attr-defined]
            except NoMatches:
                pass
        elif name.startswith("tap-"):
            await run_command(self, name[4:])

    async def _chosen(self, action: str | None) -> None:
        if action:
            await run_command(self, action)


class TapActions(Container):
    """A dialog's own keys as buttons (its BINDINGS, in their order), for a touch screen: no letter keys on a
    phone's screen, and no Escape. Three to a row."""

    def __init__(self, bindings: list[Any]) -> None:
        super().__init__(classes="tap-actions")
        self.actions = [(b.action, b.description) for b in bindings if isinstance(b, Binding)]

    def compose(self) -> ComposeResult:
        for action, label in self.actions:
            yield TapButton(label, id=f"do-{action}", classes="tap")

    @on(Button.Pressed)
    async def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.screen.run_action((event.button.id or "")[3:])


class CommandMenu(ModalScreen[str | None]):
    """Every command of the table not on the bar (title, and what it does): tap one to run it."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="tap-menu", classes="dialog"):
            yield Label("Tap what to do", classes="dialog-title")
            yield OptionList(*(self._option(c) for c in MENU), id="tap-menu-list")
            yield TapButton("Close", id="tap-menu-close", classes="tap")

    @staticmethod
    def _option(c: Command) -> Option:
        """Two rows: a thumb's height on a phone (one row is 19 pixels there); all of it takes the tap."""
        text = Text(c.title, style="bold", no_wrap=True, overflow="ellipsis")
        text.append("\n  " + c.help, style="dim")
        return Option(text, id=c.action)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    @on(Button.Pressed, "#tap-menu-close")
    def action_close(self) -> None:
        self.dismiss(None)


class MessageMenu(ModalScreen[str | None]):
    """What can be done with one message, as buttons: its own key bindings (copy, code, details, edit, regenerate)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, message: Any) -> None:
        super().__init__()
        self.message = message

    def actions(self) -> list[tuple[str, str]]:
        m = self.message
        shown = [(b.action, b.description) for b in m.BINDINGS if isinstance(b, Binding) and b.show]
        usable = {"copy", "info"}
        if code_blocks(m.text):
            usable.add("copy_code")
        if m.role == "user" and m.index is not None:
            usable.add("edit")
        if m.role == "assistant" and m.index is not None:
            usable.add("regenerate")
        return [(action, label) for action, label in shown if action in usable]

    def compose(self) -> ComposeResult:
        with Vertical(id="message-menu", classes="dialog small"):
            role = {"user": "Your question", "assistant": "The answer"}.get(self.message.role, "This note")
            yield Label(role, classes="dialog-title")
            for action, label in self.actions():
                yield TapButton(label, id=f"msg-{action}", classes="tap")
            yield TapButton("Close", id="msg-close", classes="tap")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        name = (event.button.id or "")[4:]
        self.dismiss(None if name == "close" else name)

    def action_close(self) -> None:
        self.dismiss(None)


def message_chosen(message: Any, action: str | None) -> None:
    """Back to the prompt (a phone's typing goes there, not to the message's one-letter keys), then the action."""
    message.post_message(message.Action(message, "leave"))
    if action:
        message.post_message(message.Action(message, action))


def tap_mode(app: Any) -> bool:
    """The bar shows (a narrow screen or a touch device): a tap on a message opens its actions."""
    return any(node.has_class(TAPS_CLASS) for node in (app, *app.screen_stack))


def tapped_backdrop(app: Any, event: events.Click) -> None:
    """In tap mode, a tap beside a dialog closes it, as Escape would (a phone has no Escape key)."""
    screen = app.screen
    if isinstance(screen, ModalScreen) and event.widget is screen and tap_mode(app):
        event.stop()
        screen.dismiss(None)
