"""The Textual chat app: themes, dialogs, settings, the command table's keys, and the session it runs.

The chat itself (transcript, prompt, streaming, message actions) is the ChatScreen of chat.py; the app hands it
the assistant and the open memory. The UI thread only renders: the model loads, answers, builds and switches
in workers, which post what they built in a message; the handler on the event loop puts it in place.

Every action is listed once in commands.py: keys, the command palette (Ctrl+P), slash commands and
the help screen (F1) come from that table.
"""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from .. import config as cfg
from .. import session
from ..config import GenerationSettings, UserConfig
from ..errors import HomefireError, MemoryLocked
from . import commands
from .chat import LOADING, NARROW, ChatScreen
from .commands import COMMANDS
from .tapbar import stop_hint, tapped_backdrop
from .themes import THEMES
from .widgets import Status

if TYPE_CHECKING:  # the model's stack (numpy, llama.cpp) is imported by the loading worker, not before the first screen
    from ..assistant import Assistant

# Cores kept for the event loop: with every core in llama.cpp's hands it starved (measured: 200 ms
# stalls, and 60x slower answers on a busy machine, before the short spin of homefire/omp.py).
UI_CORES = 1


class HomefireApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "homefire"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {"chat": "chat"}
    DEFAULT_MODE = "chat"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        *(
            Binding(c.key, c.action, c.title, show=c.key == "f1", priority=c.key.startswith("ctrl"))
            for c in COMMANDS
            if c.key and c.app and c.action not in ("command_palette", "quit")
        ),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    class Loaded(Message):
        def __init__(self, assistant: Assistant | None, error: str | None = None) -> None:
            super().__init__()
            self.assistant, self.error = assistant, error

    class MemoryOpened(Message):
        def __init__(self, memory: Any) -> None:
            super().__init__()
            self.memory = memory

    class NeedPassphrase(Message):
        """The memory database is encrypted: the loading worker waits on `reply` for the unlocked Memory."""

        def __init__(self, reason: str, reply: queue.Queue[Any]) -> None:
            super().__init__()
            self.reason, self.reply = reason, reply

    class Done(Message):
        """A background job of the app (attach cartridges, switch model, apply settings) ended."""

        def __init__(self, note: str = "", error: str | None = None) -> None:
            super().__init__()
            self.note, self.error = note, error

    # What a worker built, handed to the event loop: only a handler there changes the app's or the assistant's state.

    class CartridgesChecked(Message):
        def __init__(self, cartridges: list[Any]) -> None:
            super().__init__()
            self.cartridges = cartridges

    class EngineLoaded(Message):
        def __init__(self, engine: Any, spec: str | Path | None, n_ctx: int, n_threads: int | None) -> None:
            super().__init__()
            self.engine, self.spec, self.n_ctx, self.n_threads = engine, spec, n_ctx, n_threads

    class GuardLoaded(Message):
        def __init__(self, guard: Any, level: str) -> None:
            super().__init__()
            self.guard, self.level = guard, level

    def __init__(
        self,
        model: str | Path | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        settings: GenerationSettings | None = None,
        assistant: Assistant | None = None,
        guard: str | None = None,
        incognito: bool = False,
        config: UserConfig | None = None,
        touch: bool = False,
    ) -> None:
        """Options given here win over the saved settings (`config`, read from the config file if None).
        `touch`: the screen is touched, not typed at (the tap bar shows, the greeting names taps).

        With a ready-made `assistant` (tests, embedding), its engine, guard and memory are what run.
        """
        super().__init__()
        if config is None:
            try:
                config = cfg.load_config()
            except HomefireError as exc:
                self._config_error: str | None = str(exc)
                config = UserConfig()
            else:
                self._config_error = None
        else:
            self._config_error = None
        self.config = config
        self.incognito = incognito
        # None threads: the engine chooses and adapts (engine/threads.py), keeping UI_CORES for the event loop.
        plan = session.resolve(
            session.Options(model=model, n_ctx=n_ctx, threads=n_threads, guard=guard, incognito=incognito),
            config,
            reserve_cores=UI_CORES,
        )
        self.model_spec, self.n_ctx, self.n_threads, self.guard_level = plan.model, plan.n_ctx, plan.threads, plan.guard
        if assistant is not None:
            self.guard_level = assistant.guard.strictness if assistant.guard else "off"
        self.settings = settings or GenerationSettings(temperature=config.temperature)
        self._owns_engine = assistant is None  # an engine handed in is its owner's to close, not ours
        self.memory: Any = assistant.memory if assistant is not None else None
        self.model_name = str(self.model_spec or "smollm2-135m") if assistant is None else assistant.engine.model.name
        self.status = Status(model=self.model_name, guard=self.guard_level)
        self.touch = touch  # messages and dialogs name taps, not keys (tapbar.say)
        self.chat = ChatScreen(self.status, sidebar=config.sidebar, touch=touch)
        self.chat.assistant, self.chat.memory = assistant, self.memory
        # The chat is the app's one mode: the app then waits for it (and all it composes) to mount before its
        # own on_mount, as it waits for what it composes itself (a default screen would be left mounting).
        self.install_screen(self.chat, "chat")

    # What tests and benches read of the chat, kept on the app. The assistant lives on the chat screen,
    # which needs it to answer; the app puts it there (and swaps its engine, guard and cartridges).

    @property
    def assistant(self) -> Assistant | None:
        return self.chat.assistant

    @property
    def ready(self) -> bool:
        return self.chat.ready

    @property
    def answering(self) -> bool:
        return self.chat.answering

    @property
    def switching(self) -> bool:
        """A model load, cartridge attach or settings change is running."""
        return self.chat.switching

    @switching.setter
    def switching(self, busy: bool) -> None:
        self.chat.switching = busy

    @property
    def _state(self) -> str:
        return self.status.state

    # ----- layout -------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.config.theme
        self._fit(self.size.width)
        if not self.is_headless and not self.is_web and self._terminal_alive():
            self.set_interval(1.0, self._check_terminal)
            self._leave_on_signals()
        if self._config_error:
            self.notify(self._config_error, severity="error", timeout=15)
        if self.assistant is None:
            self._status(LOADING)
            self.load_model()
        else:
            self._status("ready")  # the chat screen fills its chat list as it mounts, after the app
            self._settle()

    exit_promptly = False  # set by run_app: this app is the whole process, and nothing may outlive it

    def on_unmount(self) -> None:
        self.chat.cancel_answer()  # an answer still streaming stops at its next token
        if self.exit_promptly:
            from .lifetime import exit_within

            exit_within(code=self.return_code or 0)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)  # (self.size is not updated yet: Textual's own handler runs after this one)

    async def on_event(self, event: events.Event) -> None:
        # A paste is the user at the keyboard too. Textual takes the focus away while the terminal says it is not
        # focused (a browser page that lost the window's focus says so) and gives it back on a key or a click only:
        # a paste then reached a screen with nothing focused and was dropped. It brings the focus back as a key does.
        if isinstance(event, events.Paste) and not event.is_forwarded and not self.app_focus:
            self.app_focus = True
        await super().on_event(event)

    def on_click(self, event: events.Click) -> None:
        tapped_backdrop(self, event)

    def _fit(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")  # dialogs lay out for a narrow screen too (app.tcss)
        self.chat.fit(width)

    # ----- status ------------------------------------------------------------------------------------

    def _status(self, state: str, detail: str = "") -> None:
        s = self.status
        s.model, s.guard = self.model_name, self.guard_level
        names = [c.name for c in self.assistant.cartridges] if self.assistant else []
        s.cartridges = f"cartridge {'+'.join(names)}" if names else ""
        incognito = self.incognito or (self.assistant is not None and self.assistant.memory is None)
        s.memory = "incognito" if incognito else "memory on"
        self.chat.show_state(state, detail)

    def _check_terminal(self) -> None:
        """Leave when the terminal is gone. Closing a terminal sends SIGHUP to its session leader only: under
        `make run` that is make, which waits for us, and we would spin on a dead tty forever."""
        if not self._terminal_alive():
            self.chat.cancel_answer()
            self.exit()

    def _leave_on_signals(self) -> None:
        """SIGTERM (a `kill`, a service manager, a shutdown) and SIGHUP end the app as a quit does: the answer
        stops and is saved as incomplete, and the terminal is given back as it was (by default either signal
        killed the process at once, leaving the terminal in the app's screen, with mouse reporting on)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._signalled, sig)

    def _signalled(self, sig: int) -> None:
        self.chat.cancel_answer()
        self.exit(return_code=128 + sig)

    @staticmethod
    def _terminal_alive() -> bool:
        try:
            return sys.__stdin__ is not None and os.isatty(sys.__stdin__.fileno())
        except (OSError, ValueError):
            return False

    # ----- loading -----------------------------------------------------------------------------------

    def _plan(self, **changes: Any) -> session.Plan:
        """The session the app runs (or is about to run), with these choices changed."""
        plan = session.Plan(
            model=self.model_spec,
            n_ctx=self.n_ctx,
            threads=self.n_threads,
            kv="f16",
            guard=self.guard_level,
            system_prompt=self.config.system_prompt,
            incognito=self.incognito,
            reserve_cores=UI_CORES,
        )
        return plan.but(**changes)

    def _unlock(self, locked: MemoryLocked) -> Any:
        """Session's `unlock` for the app: the passphrase dialog, answered on the event loop; Escape gives None."""
        reply: queue.Queue[Any] = queue.Queue()
        self.post_message(self.NeedPassphrase(str(locked), reply))
        return reply.get()

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        memory = None
        if not self.incognito:
            try:
                # A busy or damaged database is said here, before a chat that would not be saved; an encrypted one
                # asks for its passphrase in a dialog, and Escape there goes on incognito.
                memory = session.open_memory(unlock=self._unlock)
            except HomefireError as exc:
                self.post_message(self.Loaded(None, str(exc)))
                return
            self.post_message(self.MemoryOpened(memory))
        try:
            assistant = session.open_assistant(self._plan(), settings=self.settings, memory=memory)
        except HomefireError as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(assistant))

    def on_homefire_app_need_passphrase(self, event: NeedPassphrase) -> None:
        from .passphrase import PassphraseScreen

        def unlocked(memory: Any) -> None:
            if memory is None:
                self.notify("Memory stays locked: this session is incognito (nothing is saved or recalled).")
            event.reply.put(memory)

        self.push_screen(PassphraseScreen.for_memory(event.reason), unlocked)

    def on_homefire_app_memory_opened(self, event: MemoryOpened) -> None:
        self.memory = self.chat.memory = event.memory
        if event.memory is None:
            self.incognito = True  # the passphrase dialog was dismissed: this session saves nothing
        self.chat.fill_sidebar()

    def on_homefire_app_loaded(self, event: Loaded) -> None:
        if event.error:
            self._status("no model", event.error)
            self.notify(event.error, severity="error", timeout=10)
            return
        assert event.assistant is not None
        self.chat.assistant = event.assistant
        self.model_name = event.assistant.engine.model.name
        self._status("ready")
        self._settle()
        self.chat.model_ready()

    def _settle(self) -> None:
        """Everything loaded so far lives as long as the app: keep the collector from walking it again.
        A full collection over the model's stack took 55 ms on the UI thread, mid-answer (bench/tui.py)."""
        gc.collect()
        gc.freeze()

    # ----- actions (the commands table's APP_ACTIONS; the chat screen has the others) ------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for c in COMMANDS:
            if c.action not in ("command_palette", "quit"):
                target = self if c.app else self.chat
                yield SystemCommand(c.title, c.help, partial(self.call_later, target.run_action, c.action))
        yield from super().get_system_commands(screen)

    def _modal(self) -> bool:
        return len(self.screen_stack) > 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Over a dialog, the app's keys do nothing: the dialog's own keys (Ctrl+S saves settings…) win.
        # (The chat screen's keys are not even looked at then: a dialog's keys end at the dialog and the app.)
        if self._modal() and action not in ("quit", "command_palette", "help"):
            return False
        return True

    async def on_chat_screen_app_command(self, event: ChatScreen.AppCommand) -> None:
        """A slash command that is the app's: /model NAME, /settings, /quit…"""
        await commands.run(self, event.command, event.args)

    def action_help(self) -> None:
        from .screens import HelpScreen

        self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "homefire-light" if self.theme == "homefire-dark" else "homefire-dark"
        self._save(self.config.changed(theme=self.theme))

    def action_memory(self) -> None:
        from .memory_screens import MemoryScreen

        if self.assistant is None or self.assistant.memory is None:
            self.notify("Incognito: nothing is remembered." if self.ready else "The model is still loading.")
            return
        self.push_screen(MemoryScreen(self.assistant.memory))

    async def action_incognito(self) -> None:
        if self.answering:
            self.notify(f"Stop the answer first ({stop_hint(self)}).")
            return
        if self.assistant is None:
            self.notify("The model is still loading.")
            return
        if self.assistant.memory is not None:
            self.assistant.memory = None
            self.incognito = True
            note = "Incognito: from now on nothing is saved and nothing is recalled. /incognito again to go back."
        else:
            if self.memory is None:
                self.notify("Memory is not open in this session (started with --incognito).", severity="warning")
                return
            self.assistant.memory = self.memory
            self.incognito = False
            note = "Memory is on again: chats are saved from now on."
        await self.chat.action_new_chat()
        self._status(self._state)  # the status line says whether memory is on
        self.notify(note)

    def action_cartridges(self, names: str = "") -> None:
        from .screens import CartridgeScreen

        if not self.ready or self.answering or self.switching:
            self.notify("Wait for the model to be ready (or stop the answer) to change cartridges.")
            return
        assert self.assistant is not None
        if names:
            chosen = [] if names.strip() == "off" else names.replace(",", " ").split()
            self._begin_switch("loading cartridges…")
            self.attach_cartridges(chosen)
            return

        def picked(chosen: list[str] | None) -> None:
            if chosen is not None:
                self._begin_switch("loading cartridges…")
                self.attach_cartridges(chosen)

        attached = [c.name for c in self.assistant.cartridges]
        self.push_screen(CartridgeScreen(self.assistant.engine, attached, self.assistant.guard), picked)

    def _begin_switch(self, status: str) -> None:
        """Mark the model busy before its worker starts, on the event loop: a message sent in
        between would otherwise start an answer on the model being swapped out."""
        self.switching = True
        self._status(status)

    @work(thread=True, exclusive=True, group="model")
    def attach_cartridges(self, names: list[str]) -> None:
        assert self.assistant is not None
        try:
            carts = self.assistant.check_cartridges(names)  # slow: a state file's sha256
        except HomefireError as exc:
            self.post_message(self.Done(error=str(exc)))
            return
        self.post_message(self.CartridgesChecked(carts))

    def on_homefire_app_cartridges_checked(self, event: CartridgesChecked) -> None:
        assert self.assistant is not None
        names = [c.name for c in event.cartridges]
        if names:
            self.assistant.cartridges = event.cartridges
        else:
            self.assistant.detach()
        note = f"Answering from {', '.join(names)}." if names else "No cartridge: answering from the model alone."
        self.post_message(self.Done(note))

    def on_homefire_app_done(self, event: Done) -> None:
        self.switching = False
        if event.error:
            self.notify(event.error, severity="error", timeout=10)
        elif event.note:
            self.notify(event.note)
        self._status("ready")

    def action_models(self, name: str = "") -> None:
        from .screens import ModelScreen

        if name:
            self._switch(name)
            return

        def picked(chosen: str | None) -> None:
            if chosen:
                self._switch(chosen)

        self.push_screen(ModelScreen(self.model_name), picked)

    def _switch(self, name: str) -> None:
        if self.answering or self.switching or not self.ready:
            self.notify("Wait for the model to be ready (or stop the answer) to switch models.")
            return
        self._begin_switch(f"loading {name}…")
        self.reload_engine(name, self.n_ctx, self.n_threads)

    @work(thread=True, exclusive=True, group="model")
    def reload_engine(self, name: str | Path | None, n_ctx: int, n_threads: int | None) -> None:
        """Load a model (another one, or the same with a new context size or threads) without restarting.
        The old one keeps answering until the new one is ready; a failure keeps the old one."""
        try:
            engine = session.open_engine(self._plan(model=name, n_ctx=n_ctx, threads=n_threads))
        except HomefireError as exc:
            self.post_message(self.Done(error=f"{exc} — still on {self.model_name}"))
            return
        self.post_message(self.EngineLoaded(engine, name, n_ctx, n_threads))

    def on_homefire_app_engine_loaded(self, event: EngineLoaded) -> None:
        from ..engine import Engine

        assert self.assistant is not None
        engine = event.engine
        old = self.assistant.engine
        self.assistant.detach()  # cartridges are bound to the model that made them
        self.assistant.engine = engine
        if self._owns_engine and isinstance(old, Engine):  # one handed in (a test's) is its owner's to close
            old.close()
        self._owns_engine = True
        self.model_name, self.model_spec, self.n_ctx, self.n_threads = (
            engine.model.name,
            event.spec,
            event.n_ctx,
            event.n_threads,
        )
        self._save(self.config.changed(model=engine.model.spec, n_ctx=event.n_ctx, threads=event.n_threads))
        self.post_message(self.Done(f"Now answering with {engine.model.name}."))

    def action_settings(self) -> None:
        from .screens import SettingsScreen

        self.push_screen(SettingsScreen(self.config), self._apply_settings)

    def _save(self, config: UserConfig) -> None:
        self.config = config
        try:
            cfg.save_config(config)
        except HomefireError as exc:
            self.notify(str(exc), severity="error")

    def _apply_settings(self, new: UserConfig | None) -> None:
        if new is None:
            return
        old, assistant = self.config, self.assistant
        self._save(new)
        self.theme = new.theme
        self.settings.temperature = new.temperature
        if assistant is not None and new.system_prompt != old.system_prompt:
            assistant.system_prompt = new.system_prompt
            if not assistant.cartridges:
                assistant.conversation.system_prompt = new.system_prompt
        if new.guard != self.guard_level and assistant is not None:
            self.reload_guard(new.guard)
        else:
            self.guard_level = new.guard
        if assistant is not None and (new.n_ctx != self.n_ctx or new.threads != self.n_threads):
            self._begin_switch("reloading the model…")
            self.reload_engine(self.model_spec, new.n_ctx, new.threads)
            return
        self.notify("Settings saved.")
        self._status(self._state)

    @work(thread=True, exclusive=True, group="guard")
    def reload_guard(self, level: str) -> None:
        try:
            guard = session.load_guard(level)
        except HomefireError as exc:
            self.post_message(self.Done(error=str(exc)))
            return
        self.post_message(self.GuardLoaded(guard, level))

    def on_homefire_app_guard_loaded(self, event: GuardLoaded) -> None:
        assert self.assistant is not None
        self.assistant.use_guard(event.guard)
        self.guard_level = event.level
        off = "The guard is off: prompts go to the model unchecked."
        self.post_message(self.Done(off if event.guard is None else ""))


def run_app(
    model: str | Path | None = None,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    guard: str | None = None,
    incognito: bool = False,
    touch: bool = False,
) -> int:
    app = HomefireApp(model=model, n_ctx=n_ctx, n_threads=n_threads, guard=guard, incognito=incognito, touch=touch)
    app.exit_promptly = True
    app.run()
    return app.return_code or 0
