"""One SQLite file: conversations, messages, facts and search (see store.py, memory.py, facts.py).

from homefire.memory import Memory
memory = Memory()                       # <data dir>/memory.db, created 0600
memory.search("peanuts")                # hybrid full-text + vector search
memory.remember("User's server is at home.lan.")
"""

from ..errors import MemoryStoreError
from .memory import AnswerWriter, Fact, Hit, Memory
from .store import Store

__all__ = ["AnswerWriter", "Fact", "Hit", "Memory", "MemoryStoreError", "Store"]
