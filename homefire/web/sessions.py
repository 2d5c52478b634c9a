"""One `homefire chat` process per browser session, none of which outlives its page or the server.

textual-serve's own session starts the chat through a shell in the server's process group, stops reading
its output as soon as the browser is gone, asks it to quit and then waits for it without limit. A chat that
did not quit — an answer still streaming, a model still loading, a main thread blocked writing to a pipe
nobody read any more — kept its process and its session slot. Here each chat:
- runs without a shell, in a process group of its own, so a signal reaches it and anything it starts;
- gets SIGTERM if the server dies without stopping it (Linux's parent-death signal);
- has its output read until it ends, even after its browser left (a full pipe would block it mid-write);
- is asked to quit when its page goes; its group gets SIGTERM after QUIT_GRACE seconds, SIGKILL after
  TERM_GRACE more. Its session slot is free only once the process is gone (each one holds a model).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shlex
import signal
import sys
from asyncio.subprocess import PIPE, Process
from typing import Any

from textual_serve.app_service import AppService

QUIT_GRACE = 5.0  # a chat answers "quit" in about a second (it cancels an answer at its next token)
TERM_GRACE = 3.0

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send this child SIGTERM when the server (its parent) dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


async def _exited(process: Process, within: float) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), within)
    except TimeoutError:
        return False
    return True


class ChatProcess(AppService):
    """textual-serve's app service, with the process lifetime above (the relay protocol is unchanged)."""

    def __init__(self, command: str, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._stopping: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        self._process = process = await asyncio.create_subprocess_exec(
            *shlex.split(self.command),
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    # The browser may be gone at any moment: what the chat still says is dropped, but always read.
    async def on_data(self, payload: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            await super().on_data(payload)

    async def on_meta(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            await super().on_meta(data)

    async def on_packed(self, payload: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            await super().on_packed(payload)

    def _signal(self, sig: signal.Signals) -> None:
        # Only while the chat has not been reaped: its group id (its pid) cannot belong to anyone else yet.
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, sig)  # its own group: the group id is its pid

    async def stop(self) -> None:
        """Quit, then TERM, then KILL; returns once the process is gone. Safe to call more than once, and
        from a cancelled task: the escalation runs to its end in a task of its own."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            await self.send_meta({"type": "quit"})
            if not await _exited(process, QUIT_GRACE):
                self._signal(signal.SIGTERM)
                if not await _exited(process, TERM_GRACE):
                    self._signal(signal.SIGKILL)
                    await process.wait()
        if self._task is not None:
            # The reader ends at the end of the output; nothing can hold the pipe open once the group is gone.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, TERM_GRACE)
            self._task = None
