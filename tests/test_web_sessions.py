"""No chat process outlives its page or the server: a real headless Chromium opens `homefire serve --web` and
leaves at each moment of a session; the server is stopped (SIGTERM), killed (SIGKILL), and handed a hung chat.

Every wait polls for a condition with a generous deadline (a busy machine is slow, never wrong)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .test_web import RECORD_SCREEN, TOKEN, DevTools, chromium, serve  # noqa: F401 (fixtures)

aiohttp = pytest.importorskip("aiohttp", reason="the web extra is not installed: pip install -e '.[web]'")

pytestmark = pytest.mark.slow

DEADLINE = 120.0  # bounds a failure only: each condition is polled for and met long before on an idle machine
QUESTION = "Write a very long story about a dragon who learns to bake bread."


# -- processes, as the kernel sees them ----------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process; None once it is gone (a zombie counts as gone: it runs nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else (fields[0], int(fields[1]))


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (the server's chats and anything they started)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = st[1]
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found.update(kids)
        todo += kids
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if _stat(p) is not None}


async def until(condition: Callable[[], Any], what: str, limit: float = DEADLINE) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if result := condition():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: still not so after {limit:.0f} s")


def last_answer(home: Path) -> tuple[int, str]:
    """(complete, stats) of the last assistant message the chat saved."""
    with sqlite3.connect(home / "memory.db") as db:
        row = db.execute("select complete, stats from messages where role = 'assistant' order by id desc").fetchone()
    assert row is not None, "the chat saved no answer"
    return row[0], row[1] or ""


# -- a browser tab on the served page ------------------------------------------------------------


@asynccontextmanager
async def tab(endpoint: str) -> AsyncIterator[DevTools]:
    async with aiohttp.ClientSession() as http:
        async with http.get("http://" + urlsplit(endpoint).netloc + "/json/list") as res:
            page = next(t for t in await res.json() if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as sock:
            cdp = DevTools(sock)
            await cdp("Page.enable")
            await cdp("Page.addScriptToEvaluateOnNewDocument", source=RECORD_SCREEN)
            try:
                yield cdp
            finally:
                cdp.reader.cancel()


async def open_chat(cdp: DevTools, served: Any) -> None:
    await cdp("Page.navigate", url=f"{served.url}?token={TOKEN}")


async def ask(cdp: DevTools, served: Any, question: str) -> None:
    await cdp.wait_for_text("ready", limit=240, log=served.banner)
    await cdp.send(question, log=served.banner)


async def answering(cdp: DevTools, served: Any, home: Path) -> None:
    """The model is streaming: the chat has saved the first part of its answer."""

    def started() -> bool:
        try:
            with sqlite3.connect(home / "memory.db") as db:
                row = db.execute("select count(*) from messages where role = 'assistant' and complete = 0").fetchone()
        except sqlite3.Error:
            return False
        return bool(row and row[0])

    await until(started, f"the answer never began; the server said {served.banner}", limit=240)


# -- the browser leaves ----------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["start-up", "loading", "mid-answer"])
async def test_a_chat_whose_browser_leaves_exits(serve: Any, chromium: str, homefire_home: Path, moment: str) -> None:  # noqa: F811
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        await open_chat(cdp, served)
        chats = await until(lambda: descendants(served.proc.pid), "no chat process started")
        if moment == "loading":
            await cdp.wait_for_text("loading model", limit=240, log=served.banner)
        elif moment == "mid-answer":
            await ask(cdp, served, QUESTION)
            await answering(cdp, served, homefire_home)
        await cdp("Page.navigate", url="about:blank")  # the page goes: its websocket closes
        await until(lambda: not alive(chats), f"the chat {chats} still runs after its page left ({moment})")
    assert served.proc.poll() is None, "the server itself keeps serving"
    if moment == "mid-answer":
        complete, stats = last_answer(homefire_home)
        # Cut where the page left, not run on to the token limit with nobody to read it.
        assert complete == 0 and '"finish_reason": "cancelled"' in stats, stats


async def test_opening_and_closing_the_page_again_and_again_never_uses_up_the_sessions(
    serve: Any,  # noqa: F811
    chromium: str,  # noqa: F811
) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048", "--max-sessions", "2")
    async with tab(chromium) as cdp:
        for _ in range(6):  # three times the limit, each page left as soon as its chat process exists
            # A slot comes back once a chat that lost its page is gone (each chat holds a model).
            await until(lambda: len(descendants(served.proc.pid)) < 2, "the sessions stay used up")
            before = descendants(served.proc.pid)
            await open_chat(cdp, served)
            await until(lambda: descendants(served.proc.pid) - before, "no chat process started")  # noqa: B023
            await cdp("Page.navigate", url="about:blank")
        # Every chat ends, and a new visit still gets one of its own (a slot is free once its process is gone).
        await until(lambda: not descendants(served.proc.pid), "chats left behind by pages that went")
        await open_chat(cdp, served)
        await cdp.wait_for_text("ready", limit=240, log=served.banner)
        assert len(descendants(served.proc.pid)) == 1


# -- the server stops ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
async def test_stopping_the_server_mid_answer_stops_its_chats_first(
    serve: Any,  # noqa: F811
    chromium: str,  # noqa: F811
    homefire_home: Path,
    how: str,
) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        await open_chat(cdp, served)
        await ask(cdp, served, QUESTION)
        await answering(cdp, served, homefire_home)
        chats = descendants(served.proc.pid)
        assert chats
        served.proc.send_signal(getattr(signal, how))
        await until(lambda: served.proc.poll() is not None, "the server did not stop")
    assert served.proc.returncode == 0, served.banner
    assert not alive(chats), f"the server exited and left {chats} running"


async def test_a_chat_that_does_not_stop_is_killed(serve: Any, chromium: str) -> None:  # noqa: F811
    """A chat that neither quits nor takes SIGTERM (here: stopped with SIGSTOP) is killed when the server stops."""
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        await open_chat(cdp, served)
        await cdp.wait_for_text("ready", limit=240, log=served.banner)
        chats = descendants(served.proc.pid)
        for pid in chats:
            os.kill(pid, signal.SIGSTOP)
        await until(lambda: all((_stat(p) or ("T",))[0] == "T" for p in chats), "the chat did not stop")
        served.proc.terminate()
        await until(lambda: served.proc.poll() is not None, "the server did not stop")
    assert not alive(chats), f"the server exited and left the hung chat {chats}"


async def test_a_killed_server_leaves_no_chat_behind(serve: Any, chromium: str) -> None:  # noqa: F811
    """SIGKILL gives the server no chance to stop anything: each chat learns of it from the kernel."""
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        await open_chat(cdp, served)
        await cdp.wait_for_text("ready", limit=240, log=served.banner)
        chats = descendants(served.proc.pid)
        served.proc.kill()
        served.proc.wait()
        await until(lambda: not alive(chats), f"the chat {chats} outlived its killed server")


async def test_the_chat_app_exits_on_sigterm_while_it_answers(
    serve: Any,  # noqa: F811
    chromium: str,  # noqa: F811
    homefire_home: Path,
) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        await open_chat(cdp, served)
        await ask(cdp, served, QUESTION)
        await answering(cdp, served, homefire_home)
        chats = descendants(served.proc.pid)
        for pid in chats:
            os.kill(pid, signal.SIGTERM)
        await until(lambda: not alive(chats), f"the chat {chats} ignored SIGTERM mid-answer")
    complete, stats = last_answer(homefire_home)
    assert complete == 0 and '"finish_reason": "cancelled"' in stats, stats
