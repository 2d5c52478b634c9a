"""One SQLite file: conversations, messages, facts and search (see store.py, memory.py, facts.py).

from homefire.memory import Memory
memory = Memory()                       # <data dir>/memory.db, created 0600
memory.search("peanuts")                # hybrid full-text + vector search
memory.remember("User's server is at home.lan.")
memory = Memory.open(passphrase="...")  # an encrypted one (MemoryLocked without, WrongPassphrase if wrong)
"""

from ..errors import MemoryLocked, MemoryStoreError, WrongPassphrase
from .memory import AnswerWriter, Fact, Hit, Memory
from .store import Store

__all__ = ["AnswerWriter", "Fact", "Hit", "Memory", "MemoryLocked", "MemoryStoreError", "Store", "WrongPassphrase"]
