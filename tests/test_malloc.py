"""Memory freed between turns goes back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from homefire.malloc import _libc, give_back_freed_memory


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


@pytest.mark.skipif(_libc() is None, reason="glibc's malloc_trim only")
def test_freed_heap_memory_is_given_back() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 KB blocks come from the heap (below the mmap threshold); the last one keeps the heap's top in use,
    # so free() alone cannot shrink it: the pattern onnxruntime's activations leave behind.
    blocks = [libc.malloc(64 * 1024) for _ in range(1000)]
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks[:-1]:
        libc.free(b)
    kept = rss_mb()
    assert give_back_freed_memory()
    assert rss_mb() < kept - 40  # most of the 64 MB
    libc.free(blocks[-1])
