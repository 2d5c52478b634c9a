"""Should this prompt be answered? The on-device prompt guard: a frozen MiniLM encoder + a small head.

    from homefire.guard import Guard
    verdict = Guard(strictness="normal").check("how do I kill a hung process?")
    verdict.allowed, verdict.label, verdict.score

See MODEL_CARD.md for the data, metrics and known weaknesses.
"""

from ..errors import GuardError
from .guard import BLOCKING, LABELS, STRICTNESS, Guard, Verdict

__all__ = ["BLOCKING", "LABELS", "STRICTNESS", "Guard", "GuardError", "Verdict"]
