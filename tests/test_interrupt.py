"""Ctrl-C is never lost: in a ctypes callback, during an answer, or when the runner ignores it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from homefire.config import GenerationSettings
from homefire.interrupt import CtrlC

CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def sigint_inside_a_c_callback() -> None:
    """What llama.cpp does to us: C calls back into Python (its log callback) just as Ctrl-C arrives.

    libc's qsort calls a Python comparison function; the signal is sent from inside it, so Python's
    handler runs, and its KeyboardInterrupt is raised, inside the callback."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    sent = []

    def compare(a: int | None, b: int | None) -> int:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # a few bytecodes, so the pending handler runs here
                pass
        return 0

    items = (ctypes.c_int * 8)()
    libc.qsort(items, 8, ctypes.sizeof(ctypes.c_int), CMP(compare))


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """Exceptions Python printed as "Exception ignored" and dropped."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info.exc_value))
    return seen


def test_python_drops_a_keyboard_interrupt_raised_in_a_c_callback(unraisable: list[BaseException | None]) -> None:
    """The cause of the lost Ctrl-C: without our handler, the interrupt is printed and forgotten."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    sigint_inside_a_c_callback()  # no KeyboardInterrupt comes out
    assert [type(e) for e in unraisable] == [KeyboardInterrupt]


def test_ctrl_c_in_a_c_callback_is_still_honoured(unraisable: list[BaseException | None]) -> None:
    with CtrlC() as stop:
        assert stop.installed
        sigint_inside_a_c_callback()  # the exception is swallowed by ctypes, as above...
        assert [type(e) for e in unraisable] == [KeyboardInterrupt]
        with pytest.raises(KeyboardInterrupt):
            stop.check()  # ...but the request is not
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was


def test_while_answering_ctrl_c_only_sets_the_event_and_a_second_one_raises() -> None:
    with CtrlC() as stop, stop.answering() as cancel:
        signal.raise_signal(signal.SIGINT)
        assert cancel.is_set()  # no exception: the engine stops at its next token
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the user insists


def test_a_background_job_that_ignores_ctrl_c_keeps_ignoring_it() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with CtrlC() as stop:
            assert not stop.installed
            signal.raise_signal(signal.SIGINT)  # ignored, as the shell asked
            assert not stop.requested
    finally:
        signal.signal(signal.SIGINT, previous)


def later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_ctrl_c_mid_answer_stops_the_real_engine_at_a_token(engine, greedy: GenerationSettings) -> None:  # type: ignore[no-untyped-def]
    settings = GenerationSettings(temperature=0.0, max_tokens=3000, seed=1)
    pieces: list[str] = []
    with CtrlC() as stop, stop.answering() as cancel:
        for piece in engine.stream(
            [{"role": "user", "content": "Write a very long story about a dragon."}], settings, cancel
        ):
            pieces.append(piece)
            if len(pieces) == 5:
                os.kill(os.getpid(), signal.SIGINT)  # arrives while llama.cpp decodes the next token
    assert stop.requested
    assert engine.last_stats.finish_reason == "cancelled"
    assert 5 <= engine.last_stats.completion_tokens < 200
    # The engine is usable right away: the next answer is whole.
    assert "Paris" in engine.generate(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        greedy,
    )


def test_a_child_of_a_runner_that_ignores_sigint_would_ignore_it_too() -> None:
    """Why the CLI test resets SIGINT in its child: SIG_IGN is inherited across exec, and Python keeps it."""
    code = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    ignored = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
        capture_output=True,
        text=True,
        check=True,
    )
    assert ignored.stdout.strip() == "True"


EXIT_SCRIPT = """
import sys, threading, time
from pathlib import Path
from homefire import interrupt
from homefire.app.lifetime import exit_within

out, save_for = Path(sys.argv[1]), float(sys.argv[2])
started = threading.Event()

def end_of_turn():  # what a turn saves after its answer: the facts it taught
    with interrupt.saving():
        started.set()
        time.sleep(save_for)
        out.write_text("saved")

threading.Thread(target=end_of_turn, daemon=True).start()
started.wait()
exit_within(0.05, code=3, saving=float(sys.argv[3]))
threading.Event().wait()  # the main thread stuck, as in a model load inside llama.cpp
"""


@pytest.mark.parametrize(("save_for", "limit", "saved"), [(1.0, 60.0, True), (600.0, 0.5, False)])
def test_a_forced_exit_lets_a_turn_finish_saving_and_keeps_the_apps_exit_code(
    tmp_path: Path, save_for: float, limit: float, saved: bool
) -> None:
    """The app's exit backstop ends the process even with a thread stuck, but not in the middle of a save
    that is finishing (a fact half-learnt), and with the app's own exit code; a save that never ends is
    given up on after the limit."""
    out = tmp_path / "saved"
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(out), str(save_for), str(limit)], timeout=120)
    assert done.returncode == 3
    assert out.exists() is saved
