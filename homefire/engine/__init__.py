"""The model at work: load a GGUF, chat template, streaming, stop/cancel, stats."""

from .engine import Engine, Message, TurnStats

__all__ = ["Engine", "Message", "TurnStats"]
