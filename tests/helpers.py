"""What several test files share: a scripted engine for UI-only tests (mypy checks it against ChatEngine)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from homefire.config import GenerationSettings
from homefire.engine import ChatEngine, Message, TurnStats


@dataclass
class ScriptedModel:
    name: str = "scripted"


class ScriptedEngine:
    """Stands in for the model in UI-only tests: yields a fixed reply slowly."""

    model = ScriptedModel()

    def __init__(self, reply: list[str], delay: float = 0.01) -> None:
        self.reply, self.delay = reply, delay
        self.last_stats: TurnStats | None = None

    def fit(self, messages: list[Message], max_tokens: int) -> list[Message]:
        return messages  # every message fits: this engine has no context limit

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: list[Message], settings: GenerationSettings | None = None, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        for piece in self.reply:
            if cancel is not None and cancel.is_set():
                return
            time.sleep(self.delay)
            yield piece


_checked: type[ChatEngine] = ScriptedEngine  # mypy: the scripted engine offers all Assistant needs
