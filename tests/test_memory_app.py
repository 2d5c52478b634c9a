"""The chat app's memory: the facts screen (Ctrl+R), history search (Ctrl+F), facts used shown under an answer."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, OptionList

from homefire.app import HomefireApp
from homefire.app.memory_screens import HistorySearch, MemoryScreen
from homefire.app.widgets import ChatMessage
from homefire.assistant import Assistant
from homefire.config import GenerationSettings
from homefire.memory import Memory
from tests.test_app import send, status, wait_for

GREEDY = GenerationSettings(temperature=0, max_tokens=40)


async def test_memory_screen_edits_pins_and_forgets(engine, homefire_home: Path) -> None:  # type: ignore[no-untyped-def]
    memory = Memory()
    app = HomefireApp(assistant=Assistant(engine, settings=GREEDY, memory=memory))
    async with app.run_test(size=(110, 30)) as pilot:
        await send(pilot, "/remember my server is at home.lan")
        await wait_for(pilot, lambda: not app.answering)
        assert "home.lan" in app.query(ChatMessage)[-1].text
        # A question that needs it: the answer says which facts it was given.
        await send(pilot, "What is the hostname of my server?")
        await wait_for(pilot, lambda: not app.answering)
        assert "remembered: User's server is at home.lan." in app.query(ChatMessage)[-1].badge
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1 and "User's server is at home.lan." in table.get_row_at(0)
        await pilot.press("p")
        assert memory.store.facts()[0]["pinned"] is True
        await pilot.press("e")
        box = app.screen.query_one("#fact-input", Input)
        assert box.value == "User's server is at home.lan."
        box.value = "User's server is at nas.lan."
        await pilot.press("enter")
        assert [f["text"] for f in memory.store.facts()] == ["User's server is at nas.lan."]
        await pilot.press("a")
        app.screen.query_one("#fact-input", Input).value = "I'm allergic to peanuts"
        await pilot.press("enter")
        await pilot.pause()
        assert table.row_count == 2 and "User is allergic to peanuts." in table.get_row_at(1)
        await pilot.press("d")
        await pilot.pause()
        assert [f["text"] for f in memory.store.facts()] == ["User is allergic to peanuts."]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MemoryScreen))


async def test_history_search_opens_a_past_conversation(engine, homefire_home: Path) -> None:  # type: ignore[no-untyped-def]
    memory = Memory()
    old = memory.store.new_conversation("Sourdough", "smollm2-135m")
    memory.store.add_message(old, "user", "How long should sourdough bread prove?")
    memory.store.add_message(old, "assistant", "Usually 4 to 6 hours at room temperature.")
    app = HomefireApp(assistant=Assistant(engine, settings=GREEDY, memory=memory))
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, HistorySearch))
        app.screen.query_one("#history-query", Input).value = "bread proving time"
        await pilot.press("enter")
        results = app.screen.query_one(OptionList)
        await wait_for(pilot, lambda: results.option_count > 0)
        assert "Sourdough" in str(results.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.query(ChatMessage)) == 2)
        assert [m.text for m in app.query(ChatMessage)] == [
            "How long should sourdough bread prove?",
            "Usually 4 to 6 hours at room temperature.",
        ]
        assert app.assistant is not None and app.assistant.conversation.id == old
        await send(pilot, "Thanks!")
        await wait_for(pilot, lambda: not app.answering)
        assert len(memory.store.messages(old)) == 4  # the chat goes on in the same saved conversation


async def test_incognito_app_says_so_and_saves_nothing(engine, homefire_home: Path) -> None:  # type: ignore[no-untyped-def]
    app = HomefireApp(assistant=Assistant(engine, settings=GREEDY))
    async with app.run_test(size=(110, 30)) as pilot:
        assert "incognito" in status(app)
        await send(pilot, "What is the capital of France?")
        await wait_for(pilot, lambda: not app.answering)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not isinstance(app.screen, MemoryScreen)
    assert not (homefire_home / "memory.db").exists()
