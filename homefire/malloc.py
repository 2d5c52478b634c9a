"""Give memory freed by big temporary buffers back to the system, between turns.

onnxruntime (the guard and memory encoders) allocates each run's activations with malloc and frees them
after; glibc keeps much of that in its heap for reuse, so the chat app's RSS stayed ~75 MB above what
it uses. Trimming after a turn returns it without slowing the next one (a fixed mmap threshold did the
same but made a long guard check 2x slower: every big buffer became a fresh mmap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only (not musl, not macOS)
    except OSError:
        return None


def give_back_freed_memory() -> bool:
    """Return free heap memory to the system (a few milliseconds); False where there is no malloc_trim."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
