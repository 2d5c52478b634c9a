"""One conversation turn, and the only place the parts meet: (guard ->) (recall ->) engine (-> memory).

The guard and memory plug in here as they arrive; the CLI and the TUI only ever call this.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from .config import DEFAULT_SYSTEM_PROMPT, GenerationSettings
from .engine import Engine, Message, TurnStats
from .engine import cartridge as cartridges
from .errors import PromptError


@dataclass
class Conversation:
    """The messages of one chat, oldest first (the system prompt is kept apart)."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    messages: list[Message] = field(default_factory=list)

    def for_model(self) -> list[Message]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + self.messages


class Assistant:
    def __init__(
        self,
        engine: Engine,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        settings: GenerationSettings | None = None,
    ):
        self.engine = engine
        self.settings = settings or GenerationSettings()
        self.system_prompt = system_prompt or ""
        self.conversation = Conversation(self.system_prompt)
        self.cartridges: list[cartridges.Cartridge] = []
        self.last_stats: TurnStats | None = None

    def new_conversation(self) -> None:
        self.conversation = Conversation(self.conversation.system_prompt)

    def attach(self, names: list[str]) -> list[cartridges.Cartridge]:
        """Ask with these cartridges from now on (checked now: a stale or foreign one is refused)."""
        carts = [cartridges.load(n) for n in names]
        for cart in carts:
            for part in [cartridges.load(p) for p in cart.chunks] or [cart]:
                cartridges.validate(part, self.engine)
        self.cartridges = carts
        return carts

    def detach(self) -> None:
        self.cartridges = []
        self.conversation.system_prompt = self.system_prompt

    def turn(self, text: str, cancel: threading.Event | None = None) -> Iterator[str]:
        """Answer `text`, streaming the reply. The exchange joins the conversation even if stopped early."""
        text = text.strip()
        if not text:
            raise PromptError("the message is empty: type a question first")
        conv = self.conversation
        if self.cartridges:
            # The documents become the system prompt; their KV state comes from disk, not a re-read.
            chosen = cartridges.expand(self.cartridges, text, self.engine)
            conv.system_prompt = cartridges.activate(self.engine, chosen)["content"]
        conv.messages.append({"role": "user", "content": text})
        pieces: list[str] = []
        rejected = False
        try:
            for piece in self.engine.stream(conv.for_model(), self.settings, cancel):
                pieces.append(piece)
                yield piece
        except PromptError:
            rejected = True
            conv.messages.pop()  # a message that cannot fit is not kept: the user will shorten it
            raise
        finally:
            self.last_stats = self.engine.last_stats
            if not rejected:
                conv.messages.append({"role": "assistant", "content": "".join(pieces)})
