"""Every action of the chat app, once: the key bindings, the command palette, slash commands and the
help screen are all made from this table, so none of them can forget one."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App
    from textual.widget import Widget


@dataclass(frozen=True)
class Command:
    title: str  # as the palette and the help screen show it
    action: str  # action_<name> of the chat screen (chat.py), or of the app (app.py) for APP_ACTIONS
    help: str
    key: str = ""  # a key binding on the app ("" = none)
    slash: str = ""  # a slash command typed in the prompt ("" = none)
    args: str = ""  # what the slash command takes, for the help screen
    tap: str = ""  # its button on the tap bar (narrow screens, touch devices); every other one is in its menu

    @property
    def app(self) -> bool:
        """The app's own action (dialogs, settings, swapping the model or memory): it works from any screen."""
        return self.action in APP_ACTIONS


APP_ACTIONS = frozenset(
    {"models", "cartridges", "memory", "incognito", "settings", "toggle_theme", "help", "command_palette", "quit"}
)


COMMANDS: tuple[Command, ...] = (
    Command("New chat", "new_chat", "start a new conversation", "ctrl+n", "/new", tap="+ New"),
    Command("Stop the answer", "stop", "stop the answer being written", "escape", tap="■ Stop"),
    Command("Regenerate the last answer", "regenerate", "answer the last question again", "ctrl+g", "/regen"),
    Command(
        "Edit the last question", "edit_last", "put your last question back in the box to edit and resend", "", "/edit"
    ),
    Command("Copy the last answer", "copy_last", "copy the last answer to the clipboard", "ctrl+l", "/copy"),
    Command(
        "Copy the last code block", "copy_code", "copy the last answer's code (again: the next block)", "", "/code"
    ),
    Command("Why was it blocked?", "why", "the guard's verdict on your last message", "", "/why"),
    Command("Toggle the chat list", "toggle_sidebar", "show or hide the list of saved chats", "ctrl+b", tap="≡ Chats"),
    Command(
        "Search chats",
        "search_history",
        "full-text and by-meaning search over every saved chat",
        "ctrl+f",
        "/search",
        "[words]",
    ),
    Command("Rename this chat", "rename_chat", "give the current chat a title", "", "/rename", "TITLE"),
    Command("Delete this chat", "delete_chat", "erase the current chat from disk (asks first)", "", "/delete"),
    Command(
        "Export this chat",
        "export_chat",
        "save the current chat as Markdown or JSON (0600)",
        "",
        "/export",
        "[md|json]",
    ),
    Command("Models", "models", "list, inspect, pull, verify, remove or switch models", "ctrl+t", "/model", "[NAME]"),
    Command(
        "Cartridges",
        "cartridges",
        "build, attach or detach saved document contexts",
        "ctrl+o",
        "/cartridge",
        "[NAME…|off]",
    ),
    Command("Memory", "memory", "what homefire remembers about you: see, edit, pin, forget", "ctrl+r", "/memory"),
    Command("Remember a fact", "remember", "remember something about you", "", "/remember", "FACT"),
    Command("Forget a fact", "forget", "forget what matches", "", "/forget", "WORDS"),
    Command(
        "Toggle incognito",
        "incognito",
        "from now on save nothing and recall nothing (again: back on)",
        "",
        "/incognito",
    ),
    Command(
        "Settings", "settings", "system prompt, temperature, context, threads, guard, theme", "ctrl+s", "/settings"
    ),
    Command("Toggle dark/light theme", "toggle_theme", "switch between the dark and the light theme", "", "/theme"),
    Command("Help", "help", "every key and command", "f1", "/help"),
    Command("Command palette", "command_palette", "search every action by name", "ctrl+p"),
    Command("Quit", "quit", "leave homefire (everything is already saved)", "ctrl+q", "/quit"),
)

SLASH = {c.slash: c for c in COMMANDS if c.slash}
TAPS = tuple(c for c in COMMANDS if c.tap)  # on the tap bar itself
MENU = tuple(c for c in COMMANDS if not c.tap)  # behind its "More" button

# Keys that belong to one part of the screen, for the help screen.
LOCAL_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Prompt", "enter", "send"),
    ("Prompt", "shift+enter / ctrl+j", "new line"),
    ("Prompt", "up / down", "earlier messages you sent (on the first / last line)"),
    ("Prompt", "shift+tab", "go to the messages"),
    ("Message", "up / down", "previous / next message"),
    ("Message", "c", "copy the message"),
    ("Message", "k", "copy its code block (again: the next one)"),
    ("Message", "i", "its stats and the guard's verdict"),
    ("Message", "e", "edit a question and resend it"),
    ("Message", "r", "regenerate an answer"),
    ("Message", "escape", "back to the prompt"),
    ("Chat list", "enter", "open the chat"),
    ("Chat list", "f2", "rename the chat"),
    ("Chat list", "delete", "delete the chat (asks first)"),
    ("Dialogs", "escape", "close"),
)


def key_label(key: str) -> str:
    return "+".join(part.capitalize() if len(part) > 1 else part.upper() for part in key.split("+"))


async def run(target: App[Any] | Widget, command: Command, args: str = "") -> None:
    """Run `command` on `target` (the app, or the chat screen) with what followed its slash command, if it takes it."""
    if command.args and args:  # e.g. /model NAME, /export json: the action takes what follows
        done = getattr(target, f"action_{command.action}")(args)
        if inspect.isawaitable(done):
            await done
    else:
        await target.run_action(command.action)
