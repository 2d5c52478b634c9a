"""The chat by taps alone, at a phone's width (42 columns: a 412-pixel screen in the browser, Termux in portrait).

Pilot's clicks are what Termux sends for a tap (and what the browser's terminal sends: test_web_phone.py
taps it for real). Answers that are looked at come from the real default model."""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.binding import Binding
from textual.widgets import Input, Label, OptionList

from homefire.app import HomefireApp
from homefire.app.commands import COMMANDS, MENU, TAPS
from homefire.app.screens import AskScreen, ConfirmScreen, HelpScreen, InfoScreen
from homefire.app.tapbar import HINT as TAP_HINT
from homefire.app.tapbar import STOP, CommandMenu, MessageMenu, TapActions, TapBar, TapButton
from homefire.app.widgets import ChatMessage, PromptArea, Sidebar
from homefire.assistant import Assistant
from homefire.config import GenerationSettings
from homefire.engine import Engine
from homefire.memory import Memory

from .helpers import ScriptedEngine
from .test_app import send, status, wait_for
from .test_tui import answered, prompt

PHONE = (42, 45)  # Chromium's terminal at 412 x 860 CSS pixels, font 16
REPLY = "Here:\n\n```sh\necho hi\n```\n"


def scripted_app(**kwargs: Any) -> HomefireApp:
    memory = Memory()
    for title in ("Sourdough starter", "Trip to Lisbon"):
        memory.store.add_message(memory.store.new_conversation(title=title), "user", title)
    return HomefireApp(assistant=Assistant(ScriptedEngine([REPLY], delay=0), memory=memory), **kwargs)  # type: ignore[arg-type]


async def tap(pilot, selector: str) -> None:  # type: ignore[no-untyped-def]
    assert await pilot.click(selector), f"nothing to tap at {selector}"
    await pilot.pause(0.05)


async def tap_option(pilot, action: str) -> None:  # type: ignore[no-untyped-def]
    """Tap a command in the open menu, where it is drawn (scrolled to first if it is below the fold)."""
    options = pilot.app.screen.query_one(OptionList)
    index = options.get_option_index(action)
    line = options._index_to_line[index]
    options.scroll_to(y=line, animate=False, immediate=True)
    await pilot.pause(0.05)
    assert await pilot.click(options, offset=(4, line - round(options.scroll_y)))
    await pilot.pause(0.05)


def shows(app: HomefireApp, widget: str) -> bool:
    found = app.query(widget)
    return bool(found) and found.first().display and found.first().region.height > 0


# ----- the bar: where it shows, what it says --------------------------------------------------------


async def test_the_bar_shows_on_a_phone_and_with_touch_and_never_on_a_desktop_keyboard() -> None:
    async with scripted_app().run_test(size=(80, 24)) as pilot:
        assert not shows(pilot.app, "#tapbar")
        assert "F1 help" in str(pilot.app.query_one("#hint").render())  # the keys, as before
        await pilot.resize_terminal(*PHONE)
        await pilot.pause(0.1)
        assert shows(pilot.app, "#tapbar")  # narrow: the bar, whatever the input
        bar = pilot.app.query_one(TapBar)
        assert bar.region.bottom <= PHONE[1] - 1 and bar.region.height == 3  # three rows: about 57 pixels
        for button in bar.children:
            assert button.region.width >= 7, button  # at least 67 pixels wide: a thumb's width
    async with scripted_app(touch=True).run_test(size=(100, 30)) as pilot:
        assert shows(pilot.app, "#tapbar")  # a wide touch screen (a tablet) has it too
        hint = str(pilot.app.query_one("#hint").render())
        assert hint == TAP_HINT and "F1" not in hint and "Ctrl" not in hint and "Tap" in hint


def test_the_bar_and_its_menu_hold_every_command_once() -> None:
    assert {c.action for c in TAPS} == {"new_chat", "toggle_sidebar", "stop"}
    assert sorted(c.action for c in TAPS + MENU) == sorted(c.action for c in COMMANDS)


async def test_every_command_is_reachable_by_taps_at_phone_width() -> None:
    app = scripted_app()

    def seen() -> tuple[object, ...]:
        """What running a command changes that a user would notice."""
        return (
            type(app.screen).__name__,
            app.theme,
            len(app._notifications),
            prompt(app).text,
            app.clipboard,
            app.query_one(Sidebar).display,
            "incognito" in status(app),
            tuple(id(m) for m in app.query(ChatMessage)),
        )

    async with app.run_test(size=PHONE) as pilot:
        for c in COMMANDS:
            if c.action == "quit":
                continue  # below, last
            if not app.query(ChatMessage):
                await send(pilot, "show me")
                await answered(pilot, 2, 20)
            if c.action == "stop":
                prompt(app).value = "/edit"  # with nothing being written, Stop leaves an edit: start one
                await pilot.press("enter")
                await wait_for(pilot, lambda: prompt(app).text == "show me")
            app.clear_notifications()
            before = seen()
            if c.tap:
                await tap(pilot, f"#tap-{c.action}")
            else:
                await tap(pilot, "#tap-more")
                await wait_for(pilot, lambda: isinstance(app.screen, CommandMenu))
                await tap_option(pilot, c.action)
            await wait_for(pilot, lambda b=before: seen() != b and not isinstance(app.screen, CommandMenu))  # type: ignore[misc]
            while len(app.screen_stack) > 1:  # a dialog it opened: a tap beside it closes it
                await pilot.click(offset=(0, 0))
                await pilot.pause(0.05)
            if app.query_one(Sidebar).display:
                await tap(pilot, "#tap-toggle_sidebar")
        await tap(pilot, "#tap-more")
        await tap_option(pilot, "quit")
        await wait_for(pilot, lambda: app.return_code is not None)


async def test_a_tap_beside_a_dialog_closes_it_as_escape_would() -> None:
    async with scripted_app(touch=True).run_test(size=PHONE) as pilot:
        await tap(pilot, "#tap-more")
        await tap_option(pilot, "help")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await pilot.click(offset=(0, 0))  # the help dialog leaves a margin round it
        await wait_for(pilot, lambda: len(pilot.app.screen_stack) == 1)
        await tap(pilot, "#tap-more")
        await tap(pilot, "#tap-menu-close")
        assert len(pilot.app.screen_stack) == 1


async def test_a_saved_chat_is_opened_renamed_and_deleted_by_taps_alone() -> None:
    """The chat list's F2 and Delete, on a phone: open the chat with a tap, then the menu's Rename and Delete."""
    app = scripted_app(touch=True)
    store = app.memory.store
    async with app.run_test(size=PHONE) as pilot:
        await tap(pilot, "#tap-toggle_sidebar")
        await wait_for(pilot, lambda: shows(app, "#sidebar"))
        await pilot.click(app.query_one("#chats", OptionList), offset=(4, 0))  # the newest: "Trip to Lisbon"
        await wait_for(pilot, lambda: bool(app.query(ChatMessage)) and not shows(app, "#sidebar"))
        cid = app.assistant.conversation.id  # type: ignore[union-attr]
        assert store.conversation(cid)["title"] == "Trip to Lisbon"

        await tap(pilot, "#tap-more")
        await tap_option(pilot, "rename_chat")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen))
        assert app.screen.query_one(Input).value == "Trip to Lisbon"  # the title to change, not a blank box
        await pilot.press(*"Trip to Porto", "enter")  # the soft keyboard's typing replaces the selected title
        await wait_for(pilot, lambda: store.conversation(cid)["title"] == "Trip to Porto")

        await tap(pilot, "#tap-more")
        await tap_option(pilot, "delete_chat")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await tap(pilot, "#yes")
        await wait_for(pilot, lambda: all(c["id"] != cid for c in store.conversations()))
        assert not app.query(ChatMessage) and len(app.screen_stack) == 1  # a new chat in its place


async def test_on_a_touch_screen_what_the_app_says_names_taps_not_keys() -> None:
    slow = HomefireApp(assistant=Assistant(ScriptedEngine(["word "] * 400, delay=0.05)), touch=True)
    async with slow.run_test(size=PHONE) as pilot:
        assert "Esc" not in prompt(slow).placeholder
        await send(pilot, "tell me a long story")
        await wait_for(pilot, lambda: slow.answering)
        await tap(pilot, "#tap-new_chat")  # not while it answers: the note says how to stop it
        await tap(pilot, "#tap-more")
        await tap_option(pilot, "incognito")
        await wait_for(pilot, lambda: len(slow._notifications) >= 2)
        said = [n.message for n in slow._notifications]
        assert all(f"tap {STOP}" in m and "Esc" not in m for m in said), said
        await tap(pilot, "#tap-stop")
        await wait_for(pilot, lambda: not slow.answering)
        slow.clear_notifications()
        await pilot.click(slow.query(ChatMessage)[0])  # a question: its actions
        await tap(pilot, "#msg-edit")
        await wait_for(pilot, lambda: "editing" in status(slow))
        assert f"tap {STOP} cancels" in status(slow) and "Esc" not in status(slow)
    async with scripted_app().run_test(size=PHONE) as pilot:  # a narrow terminal with a keyboard: the keys
        assert "Esc stops" in prompt(pilot.app).placeholder


@pytest.mark.parametrize("dialog", ["models", "memory", "cartridges", "settings"])
async def test_on_a_touch_screen_a_dialogs_own_keys_are_buttons(dialog: str) -> None:
    app = scripted_app(touch=True)
    async with app.run_test(size=PHONE) as pilot:
        await tap(pilot, "#tap-more")
        await tap_option(pilot, dialog)
        await wait_for(pilot, lambda: len(app.screen_stack) == 2)
        title = str(app.screen.query_one(".dialog-title, #memory-title", Label).render())
        assert "tap" in title.lower() or "Save" in title, title
        assert not any(k in title for k in ("Esc", "Ctrl", "Enter", "Space", " · ")), title
        if dialog == "settings":
            return  # its Save and Cancel buttons were always there
        bar = app.screen.query_one(TapActions)
        shown = {b.action for b in app.screen.BINDINGS if isinstance(b, Binding)}
        assert {a for a, _ in bar.actions} == shown
        for button in bar.query(TapButton):
            assert button.region.width >= 7 and button.region.height == 3, button  # a thumb's size
        if dialog == "memory":
            await tap(pilot, "#do-add")
            await wait_for(pilot, lambda: app.focused is app.screen.query_one("#fact-input"))
        await tap(pilot, "#do-close" if dialog != "cartridges" else "#do-cancel")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)


# ----- typing on a phone: a new line, and the focus stays in the prompt -------------------------------


async def test_the_new_line_button_adds_a_line_and_leaves_the_focus_in_the_prompt() -> None:
    async with scripted_app().run_test(size=PHONE) as pilot:
        app = pilot.app
        await pilot.press(*"first")
        await tap(pilot, "#tap-newline")
        await pilot.press(*"second")
        assert prompt(app).text == "first\nsecond" and isinstance(app.focused, PromptArea)
        await pilot.press("enter")  # the soft keyboard's Enter sends
        await answered(pilot, 2, 20)
        assert app.query(ChatMessage)[0].text == "first\nsecond"


async def test_a_paste_lands_in_the_prompt_even_after_the_page_lost_the_focus() -> None:
    """A browser page reports losing the window's focus (AppBlur: Textual unfocuses everything); a paste then
    must not be dropped: it brings the focus back to the prompt, as a key does (found in headless Chromium)."""
    async with scripted_app(touch=True).run_test(size=PHONE) as pilot:
        app = pilot.app
        app.post_message(events.AppBlur())
        await wait_for(pilot, lambda: app.focused is None)
        app.post_message(events.Paste("pasted one\rpasted two"))
        await wait_for(pilot, lambda: prompt(app).text == "pasted one\npasted two")
        assert isinstance(app.focused, PromptArea) and not app.query(ChatMessage)  # in the box, unsent


# ----- chats, messages, stop: with the real model -----------------------------------------------------


async def test_chats_open_by_taps_and_the_list_gets_out_of_the_way(engine: Engine) -> None:
    memory = Memory()
    app = HomefireApp(assistant=Assistant(engine, memory=memory, settings=GenerationSettings(max_tokens=16)))
    async with app.run_test(size=PHONE) as pilot:
        await send(pilot, "Say hello.")
        await answered(pilot, 2)
        first = app.assistant.conversation.id  # type: ignore[union-attr]
        await tap(pilot, "#tap-new_chat")
        await wait_for(pilot, lambda: not app.query(ChatMessage))
        await tap(pilot, "#tap-toggle_sidebar")
        await wait_for(pilot, lambda: shows(app, "#sidebar"))
        chats = app.query_one("#chats", OptionList)
        await pilot.click(chats, offset=(4, 0))  # the newest chat: the one just left
        await wait_for(pilot, lambda: len(app.query(ChatMessage)) == 2)
        assert app.assistant.conversation.id == first  # type: ignore[union-attr]
        assert not app.query_one(Sidebar).display and isinstance(app.focused, PromptArea)  # back to the chat


async def test_stop_is_one_tap_while_the_real_model_answers(engine: Engine) -> None:
    app = HomefireApp(assistant=Assistant(engine, settings=GenerationSettings(max_tokens=400)), touch=True)
    async with app.run_test(size=PHONE) as pilot:
        await send(pilot, "Write a very long story about a dragon who learns to bake bread.")
        await wait_for(pilot, lambda: len(app.query(ChatMessage)) == 2 and app.query(ChatMessage)[1].text, 120)
        assert app.query_one("#tap-stop").variant == "error"  # it stands out while the answer streams
        await tap(pilot, "#tap-stop")
        await wait_for(pilot, lambda: not app.answering, 60)
        assert "stopped" in status(app)
        assert app.query_one("#tap-stop").variant == "default"
        assert app.assistant.last_stats.finish_reason == "cancelled"  # type: ignore[union-attr]


async def test_a_tap_on_a_message_offers_what_its_keys_do(engine: Engine) -> None:
    app = HomefireApp(assistant=Assistant(engine, settings=GenerationSettings(temperature=0, max_tokens=24)))
    async with app.run_test(size=PHONE) as pilot:
        await send(pilot, "What is the capital of France?")
        await answered(pilot, 2)
        question, answer = app.query(ChatMessage)
        await pilot.click(answer)
        await wait_for(pilot, lambda: isinstance(app.screen, MessageMenu))
        offered = {b.id for b in app.screen.query("TapButton")}
        assert {"msg-copy", "msg-info", "msg-regenerate", "msg-close"} <= offered and "msg-edit" not in offered
        await tap(pilot, "#msg-copy")
        await wait_for(pilot, lambda: app.clipboard == answer.text and len(app.screen_stack) == 1)
        assert isinstance(app.focused, PromptArea)  # typing goes on in the prompt, not to the message's keys
        await pilot.click(question)
        await wait_for(pilot, lambda: isinstance(app.screen, MessageMenu))
        assert "msg-edit" in {b.id for b in app.screen.query("TapButton")}
        await tap(pilot, "#msg-info")
        await wait_for(pilot, lambda: isinstance(app.screen, InfoScreen))
        await pilot.click(offset=(0, 0))
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        await pilot.click(question)
        await tap(pilot, "#msg-edit")
        await wait_for(pilot, lambda: prompt(app).text == "What is the capital of France?")


@pytest.mark.parametrize("touch", [False, True])
async def test_on_a_desktop_a_click_on_a_message_still_only_selects_it(touch: bool) -> None:
    async with scripted_app(touch=touch).run_test(size=(100, 30)) as pilot:
        await send(pilot, "show me")
        await answered(pilot, 2, 20)
        await pilot.click(pilot.app.query(ChatMessage)[1])
        await pilot.pause(0.1)
        assert isinstance(pilot.app.screen, MessageMenu) == touch
