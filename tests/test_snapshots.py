"""Snapshots of every screen at 80x24 and at a phone-sized 50x30, and of a touched phone at 42x45 with its
tap bar (pytest-textual-snapshot).

A scripted engine with fixed stats and a fixed RAM reading make the pictures repeatable; the real model's
answers are tested in test_tui.py. After a deliberate change of looks: `pytest tests/test_snapshots.py
--snapshot-update`, then look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from homefire.app import HomefireApp, widgets
from homefire.assistant import Assistant
from homefire.engine import TurnStats
from homefire.memory import Memory

from .helpers import ScriptedEngine

SIZES = {"80x24": (80, 24), "50x30": (50, 30)}
ANSWER = (
    'Use `grep -r` to search a folder:\n\n```sh\ngrep -rn "TODO" src/\n```\n\n'
    "- `-r` reads every file below the folder\n- `-n` prints line numbers\n"
)


class SnapEngine(ScriptedEngine):
    def stream(self, messages, settings, cancel=None) -> Iterator[str]:  # type: ignore[no-untyped-def]
        yield from super().stream(messages, settings, cancel)
        self.last_stats = TurnStats(
            prompt_tokens=52,
            prompt_tokens_evaluated=52,
            completion_tokens=48,
            time_to_first_token_s=0.14,
            decode_tokens_per_s=101.0,
            total_s=0.6,
            finish_reason="stop",
        )


@pytest.fixture(autouse=True)
def fixed_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "rss_mb", lambda: 212.0)


def make_app(touch: bool = False) -> HomefireApp:
    memory = Memory()
    for title in ("Sourdough starter", "Garden plans for spring", "Trip to Lisbon"):
        cid = memory.store.new_conversation(title=title)
        memory.store.add_message(cid, "user", title)
    memory.store.add_fact("User's daughter is Maya.", pinned=True)
    memory.store.add_fact("User is allergic to peanuts.")
    assistant = Assistant(SnapEngine([ANSWER], delay=0), memory=memory)  # type: ignore[arg-type]
    return HomefireApp(assistant=assistant, touch=touch)


async def converse(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.query_one("#prompt").value = "How do I find TODO comments in my code?"
    await pilot.press("enter")
    while app.answering or len(app.query("ChatMessage")) < 2:
        await pilot.pause(0.02)
    await pilot.pause(0.3)
    app.clear_notifications()


def still(app: HomefireApp) -> None:
    """No blinking cursors: a blink caught half-way would make the pictures differ between runs."""
    for screen in app.screen_stack:
        for box in screen.query("Input, TextArea"):
            box.cursor_blink = False  # type: ignore[attr-defined]


def opener(*keys: str, answer: bool = True, tap: str = ""):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        still(pilot.app)
        if answer:
            await converse(pilot)
        if keys:
            await pilot.press(*keys)
        if tap:
            await pilot.click(tap)
        await pilot.pause(0.3)
        still(pilot.app)
        pilot.app.clear_notifications()
        await pilot.pause(0.05)

    return run_before


SCREENS = {
    "main": opener(),
    "first-run": opener(answer=False),
    "help": opener("f1"),
    "settings": opener("ctrl+s"),
    "models": opener("ctrl+t"),
    "cartridges": opener("ctrl+o"),
    "memory": opener("ctrl+r", answer=False),  # an answer would stamp "last used" with the time
    "search": opener("ctrl+f"),
    "details": opener("shift+tab", "i"),
    "palette": opener("ctrl+p", answer=False),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, screen: str, size: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=SIZES[size], run_before=SCREENS[screen])


# A phone: the browser route at 412 x 860 pixels is 42 x 45; touched, so the greeting names taps.
PHONE_SCREENS = {
    "phone-first-run": opener(answer=False),
    "phone-main": opener(),
    "phone-menu": opener(tap="#tap-more"),
    "phone-message": opener(tap="ChatMessage.assistant"),
}


@pytest.mark.parametrize("screen", PHONE_SCREENS)
def test_phone_screen(snap_compare, screen: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(touch=True), terminal_size=(42, 45), run_before=PHONE_SCREENS[screen])
