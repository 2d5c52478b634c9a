"""The chat app's two colour themes (their names are config.THEMES: the settings screen offers them)."""

from __future__ import annotations

from textual.theme import Theme

THEMES = [
    Theme(
        name="homefire-dark",
        primary="#E8833A",
        secondary="#8FB8DE",
        accent="#F2B880",
        warning="#F2C14E",
        error="#E5534B",
        success="#7FB77E",
        foreground="#E6E1DA",
        background="#1B1917",
        surface="#25221F",
        panel="#302C28",
        dark=True,
    ),
    Theme(
        name="homefire-light",
        primary="#B4531A",
        secondary="#2F6690",
        accent="#A0522D",
        warning="#9A6B00",
        error="#B3261E",
        success="#2E7D32",
        foreground="#2A2623",
        background="#FBF8F3",
        surface="#F2ECE4",
        panel="#E7DED3",
        dark=False,
    ),
]
