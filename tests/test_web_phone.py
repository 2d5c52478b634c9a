"""A phone in a real browser: headless Chromium as a 412 x 860 touch screen opens `homefire serve --web` and
uses the chat with taps (touch events through the DevTools protocol) and the on-screen keyboard's Enter,
with the real default model. The terminal is read back with pyte to find where each label is drawn.

HOMEFIRE_SCREENSHOTS=docs/screenshots keeps a picture of each screen (README shows them)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyte
import pytest

from .test_web import TOKEN, DevTools, chromium, serve  # noqa: F401 (fixtures)
from .test_web_sessions import last_answer, tab

aiohttp = pytest.importorskip("aiohttp", reason="the web extra is not installed: pip install -e '.[web]'")

pytestmark = pytest.mark.slow

# Device pixel ratio 1: at 2.625 (a Pixel's) headless Chromium drew the terminal 2.6 times too large for the
# viewport (its right half off-screen); the page's layout in CSS pixels, which is what a phone lays out, is the same.
PHONE = {"width": 412, "height": 860, "deviceScaleFactor": 1, "mobile": True}
# Each wait polls for a condition; these only bound a failure, which then shows the screen. A test's waits together
# stay within BUDGET, well under pytest's 300 s timeout, so a failure says what it waited for instead of timing out.
LOADING = 150.0  # the chat process starts and loads the model
ANSWER = 120.0  # the model writes (or starts) an answer
SHOWN = 30.0  # a tap or a keystroke is drawn
BUDGET = 260.0
# Run in the page before its scripts: the terminal size the page last told the chat (to read its screen).
RECORD_SIZE = """
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string" && data.startsWith('["resize"')) window.__homefireSize = JSON.parse(data)[1];
    return send.call(this, data);
  };
})();
"""


class Phone:
    """One browser tab as a phone: what its terminal shows, and taps and typing on it."""

    def __init__(self, cdp: DevTools, served: Any, shots: Path = Path(), home: Path = Path()) -> None:
        self.cdp, self.served, self.shots, self.home = cdp, served, shots, home
        self.deadline = asyncio.get_running_loop().time() + BUDGET

    async def setup(self) -> None:
        await self.cdp("Emulation.setDeviceMetricsOverride", **PHONE)
        await self.cdp("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
        await self.cdp("Page.addScriptToEvaluateOnNewDocument", source=RECORD_SIZE)
        await self.cdp("Page.navigate", url=f"{self.served.url}?token={TOKEN}")

    async def rows(self) -> list[str]:
        """The terminal's lines as the chat last drew them."""
        size = await self.cdp.js("window.__homefireSize || null")
        raw = await self.cdp.js("window.__homefireScreen") or ""
        if not size:
            return []
        screen = pyte.Screen(size["width"], size["height"])
        pyte.Stream(screen).feed(raw)
        return list(screen.display)

    async def shows(self, text: str, limit: float = SHOWN, last: bool = False) -> tuple[int, int]:
        """Wait until `text` is on the screen; (row, column) where it starts (the lowest one if `last`)."""

        async def found() -> tuple[int, int] | None:
            rows = list(enumerate(await self.rows()))
            for row, line in reversed(rows) if last else rows:
                if text in line:
                    return row, line.index(text)
            return None

        where: tuple[int, int] = await self.poll(found, f"{text!r} never appeared", limit)
        return where

    async def gone(self, text: str) -> None:
        async def absent() -> bool:
            return not any(text in line for line in await self.rows())

        await self.poll(absent, f"{text!r} stayed on the screen")

    async def said(self, text: str) -> None:
        """`text` is in a sent message (above the prompt's top border), not only in the prompt box."""

        async def sent() -> bool:
            rows = await self.rows()
            prompt_top = max((i for i, line in enumerate(rows) if "╭" in line), default=len(rows))
            return any(text in line for line in rows[:prompt_top])

        await self.poll(sent, f"{text!r} was never sent")

    async def poll(self, check: Callable[[], Awaitable[Any]], what: str, limit: float = SHOWN) -> Any:
        """Wait for `check` to give something true (the limit, and what is left of the test's budget, only bound
        a failure); fail showing the screen and what the server said."""
        loop = asyncio.get_running_loop()
        deadline = min(loop.time() + limit, self.deadline)
        while True:
            if result := await check():
                return result
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.25)
        shown = "\n".join(line.rstrip() for line in await self.rows())
        waited = f"{limit:.0f} s" if deadline < self.deadline else f"the test's {BUDGET:.0f} s"
        raise AssertionError(f"{what} (waited {waited}); the screen:\n{shown}\nthe server said: {self.served.banner}")

    async def tap(self, text: str, last: bool = False) -> None:
        """A finger on the middle of `text` where the terminal draws it (the lowest one if `last`: the bar's
        labels are also words of the greeting): touch start, touch end."""
        row, col = await self.shows(text, last=last)
        size = await self.cdp.js("window.__homefireSize")
        box = await self.cdp.js(
            "(() => { const r = document.querySelector('.xterm-screen').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()"
        )
        left, top, width, height = box
        x = left + (col + len(text) / 2) * width / size["width"]
        y = top + (row + 0.5) * height / size["height"]
        await self.cdp("Input.dispatchTouchEvent", type="touchStart", touchPoints=[{"x": x, "y": y}])
        await self.cdp("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])

    async def type(self, text: str) -> None:
        """What a soft keyboard commits, then its Enter key."""
        await self.cdp.send(text, log=self.served.banner, limit=min(SHOWN, self.deadline - _now()))

    async def saved(self, what: str, complete: int) -> None:
        """The chat has saved an answer that is (1) or is not yet (0) complete."""

        async def found() -> bool:
            return _answers(self.home, complete) > 0

        await self.poll(found, what, ANSWER)

    async def shot(self, name: str) -> None:
        await asyncio.sleep(0.5)  # the terminal draws on its next animation frame
        picture = await self.cdp("Page.captureScreenshot", format="png")
        (self.shots / f"phone-{name}.png").write_bytes(base64.b64decode(picture["data"]))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("HOMEFIRE_SCREENSHOTS") or tmp_path / "shots")
    where.mkdir(parents=True, exist_ok=True)
    return where


async def test_a_phone_chats_by_taps_and_its_keyboard(
    serve: Any,  # noqa: F811
    chromium: str,  # noqa: F811
    homefire_home: Path,
    shots: Path,
) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048")
    async with tab(chromium) as cdp:
        phone = Phone(cdp, served, shots, homefire_home)
        await phone.setup()
        clipboard = ["clipboardReadWrite", "clipboardSanitizedWrite"]
        await cdp("Browser.grantPermissions", origin=served.url.rstrip("/"), permissions=clipboard)
        assert await cdp.js("matchMedia('(pointer: coarse)').matches")  # Chromium is a touch screen now
        await phone.shows("ready", LOADING)
        await phone.shows("Tap ≡ Chats")  # the greeting names taps: the page told the chat its pointer is coarse
        assert not any("F1" in line or "Ctrl" in line for line in await phone.rows())
        await phone.shot("first-run")

        # A question, sent with the keyboard's Enter, answered by the real model.
        await phone.type("What is the capital of France?")
        await phone.shows("Paris", ANSWER)
        await phone.saved("the answer never finished", complete=1)
        await phone.shot("answer")

        # Tap the answer: its actions; tap Copy: the page's clipboard holds it.
        await phone.tap("Paris")
        await phone.shows("Details")
        await phone.shot("message-actions")
        await phone.tap("Copy")
        await phone.gone("Details")
        copied = await cdp.js("window.__homefireScreen.includes('\\x1b]52;c;')")
        assert copied, "the chat sent no copy to the page (OSC 52)"
        held = await _clipboard(cdp)
        assert held is None or "Paris" in held, held

        # The chat list, then a new chat. (The copy's notification sits above the bar, never over it.)
        await phone.tap("≡ Chats", last=True)
        await phone.shows("filter chats")
        await phone.shot("chats")
        await phone.tap("≡ Chats", last=True)
        await phone.gone("filter chats")
        await phone.tap("+ New", last=True)
        await phone.gone("Paris")

        # Everything else is one tap away in the menu.
        await phone.tap("⋯ More", last=True)
        await phone.shows("Tap what to do")
        await phone.shot("menu")
        await phone.tap("Close")
        await phone.gone("Tap what to do")

        # A long answer, stopped with one tap while it streams.
        await phone.type("Write a very long story about a dragon who learns to bake bread.")
        await phone.saved("the answer never began", complete=0)
        await phone.shot("answering")
        await phone.tap("■ Stop", last=True)
        await phone.shows("stopped")
        complete, stats = last_answer(homefire_home)
        assert complete == 0 and '"finish_reason": "cancelled"' in stats, stats


async def test_the_phone_keyboard_sends_pastes_and_keeps_the_prompt_in_view(
    serve: Any,  # noqa: F811
    chromium: str,  # noqa: F811
) -> None:
    served = serve("--token", TOKEN, "--ctx", "2048", "--guard", "off", "--incognito")
    async with tab(chromium) as cdp:
        phone = Phone(cdp, served)
        await phone.setup()
        await phone.shows("ready", LOADING)
        textarea = "document.querySelector('.xterm-helper-textarea')"
        attributes = await cdp.js(
            f"['autocapitalize', 'autocorrect', 'spellcheck', 'enterkeyhint'].map(n => {textarea}.getAttribute(n))"
        )
        assert attributes == ["off", "off", "false", "send"]

        # Pasting two lines puts both in the prompt, unsent.
        await cdp.js(f"{textarea}.focus()")
        await cdp.js(
            "(() => { const data = new DataTransfer(); data.setData('text/plain', 'pasted one\\npasted two');"
            f" {textarea}.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: data, bubbles: true,"
            " cancelable: true})); })()"
        )
        row, _ = await phone.shows("pasted two")
        assert "╭" in "".join((await phone.rows())[max(row - 3, 0) : row]), "the paste is in the prompt box, unsent"

        # A keyboard that sends Enter as a line break (not as a key) sends too.
        await cdp.js(
            f"{textarea}.dispatchEvent(new InputEvent('beforeinput', {{inputType: 'insertLineBreak',"
            " bubbles: true, cancelable: true}))"
        )
        await phone.said("pasted one")

        # The soft keyboard opens: the page shrinks to what is visible, and the prompt is still drawn in it.
        before = (await cdp.js("window.__homefireSize"))["height"]
        await cdp("Emulation.setDeviceMetricsOverride", **dict(PHONE, height=480))
        await phone.poll(
            lambda: _size_below(cdp, before), "the terminal did not shrink to the visible part of the page"
        )
        await phone.shows("Ask anything")
        bottom = await cdp.js(
            "document.querySelector('.xterm-screen').getBoundingClientRect().bottom <= window.visualViewport.height"
        )
        assert bottom, "the terminal runs below the visible part of the page"


async def test_the_page_is_installable_and_its_manifest_and_icons_are_local_and_guarded(serve: Any) -> None:  # noqa: F811
    served = serve("--token", TOKEN)
    base = served.url
    async with aiohttp.ClientSession() as http:
        async with http.get(base, headers={"Authorization": f"Bearer {TOKEN}"}) as res:
            html = await res.text()
        assert 'rel="manifest"' in html and 'name="theme-color"' in html
        async with http.get(base + "assets/manifest.webmanifest") as res:
            assert res.status == 401  # the same token rule as every other file
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(base + "assets/manifest.webmanifest", headers=auth) as res:
            assert res.status == 200
            manifest = json.loads(await res.text())
        assert manifest["display"] == "standalone" and manifest["theme_color"].startswith("#")
        assert manifest["start_url"] == "/" and manifest["name"] == "homefire"
        sizes = set()
        for icon in manifest["icons"]:
            assert "://" not in icon["src"]  # relative: from this server
            async with http.get(base + "assets/" + icon["src"], headers=auth) as res:
                assert res.status == 200 and res.content_type == "image/png"
                png = await res.read()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
        assert {192, 512} <= sizes and any(i.get("purpose") == "maskable" for i in manifest["icons"])


async def test_a_real_browser_sees_an_installable_app(serve: Any, chromium: str) -> None:  # noqa: F811
    """Chromium's own verdict: the manifest parses, with no errors, from behind the token."""
    served = serve("--token", TOKEN)
    async with tab(chromium) as cdp:
        phone = Phone(cdp, served)
        await phone.setup()
        await phone.shows("ready", LOADING)
        manifest = await cdp("Page.getAppManifest")
        assert not manifest.get("errors"), manifest["errors"]
        parsed = json.loads(manifest["data"])
        assert parsed["display"] == "standalone"


# -- helpers ----------------------------------------------------------------------------------------


def _answers(home: Path, complete: int) -> int:
    """How many answers the chat has saved that are (1) or are not yet (0) complete."""
    try:
        with sqlite3.connect(home / "memory.db") as db:
            row = db.execute(
                "select count(*) from messages where role = 'assistant' and complete = ?", (complete,)
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _clipboard(cdp: DevTools) -> str | None:
    """The page's clipboard, where headless Chromium lets the page read it (None where it does not)."""
    # Bounded: a page without the permission may wait on it for ever.
    read = "Promise.race([navigator.clipboard.readText(), new Promise(r => setTimeout(() => r(null), 5000))])"
    try:
        res = await cdp("Runtime.evaluate", expression=read, awaitPromise=True)
    except AssertionError:
        return None
    if res.get("exceptionDetails"):
        return None
    return res["result"].get("value")


async def _size_below(cdp: DevTools, rows: int) -> bool:
    size = await cdp.js("window.__homefireSize")
    return bool(size) and size["height"] < rows
