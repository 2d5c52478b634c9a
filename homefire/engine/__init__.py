"""The model at work: load a GGUF, chat template, streaming, stop/cancel, stats."""

from .engine import ChatEngine, Engine, Message, TurnStats

__all__ = ["ChatEngine", "Engine", "Message", "TurnStats"]
