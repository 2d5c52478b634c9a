"""Ctrl-C that is always honoured: a stop request no part of the program can swallow.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to be. Raised
inside a ctypes callback (llama.cpp calls our log callback from the main thread) or a `__del__`, it
is printed as "Exception ignored" and dropped, and `homefire ask` went on answering. Here the signal
also sets an event: while an answer streams, that event is all it does (the engine checks it between
tokens, so the answer stops cleanly and is saved as incomplete), and at other times the usual
KeyboardInterrupt is raised as well, with the event as a backstop checked at the next step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any


class CtrlC:
    """`with CtrlC() as stop:` around a command; `with stop.answering():` around the streaming part.

    Nothing is installed when SIGINT was ignored when we started (a background job: the shell means
    it to ignore Ctrl-C) or handled by someone else, or off the main thread.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._soft = False
        self._previous: Any = None
        self.installed = False

    def __enter__(self) -> CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self._previous)
            self.installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        again = self.event.is_set()
        self.event.set()
        if again or not self._soft:
            raise KeyboardInterrupt  # a second Ctrl-C, or not answering: stop where we are

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed, even if its exception was swallowed on the way."""
        if self.event.is_set():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def answering(self) -> Iterator[threading.Event]:
        """While inside, Ctrl-C only sets the event (pass it as the answer's `cancel`)."""
        self.check()
        self._soft = True
        try:
            yield self.event
        finally:
            self._soft = False


# What a forced exit waits for: the short writes that end a turn (the facts it taught, its vectors). An app
# that has gone ends its process within seconds (app/lifetime.py) even with a model load stuck in llama.cpp;
# without this, that backstop could cut a fact half-learnt (the first recall after a start loads the encoder).
_saving = 0
_saved = threading.Condition()


@contextlib.contextmanager
def saving() -> Iterator[None]:
    """Around work an exit should let finish (a few seconds at most): `wait_saved` waits for it."""
    global _saving
    with _saved:
        _saving += 1
    try:
        yield
    finally:
        with _saved:
            _saving -= 1
            _saved.notify_all()


def wait_saved(limit: float) -> bool:
    """Wait up to `limit` seconds for every `saving()` block to end; False if one is still running."""
    with _saved:
        return _saved.wait_for(lambda: _saving == 0, timeout=limit)
