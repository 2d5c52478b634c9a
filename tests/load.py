"""CPU hogs, to run the suite (or one test) on a machine as busy as a user's.

    python tests/load.py -- python -m pytest -q            # one busy loop per core, at nice 0
    python tests/load.py --hogs 2 --nice 10 -- make test

Tests use `cpu_hogs()` directly where the load is the point (Ctrl-C under a hog). Each hog is a
child process that also stops by itself after `seconds`, so a killed runner leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def cpu_hogs(count: int | None = None, nice: int = 0, seconds: float = 3600) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` busy-loop processes (default: one per core) for the duration of the `with` block."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(cores() if count is None else count):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY_LOOP, str(seconds)],
                    preexec_fn=(lambda: os.nice(nice)) if nice else None,  # noqa: PLW1509
                    stdin=subprocess.DEVNULL,
                )
            )
        time.sleep(0.2)  # running, not starting
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description="Run a command while busy loops keep the CPU busy.")
    ap.add_argument("--hogs", type=int, default=None, help="busy loops (default: one per core)")
    ap.add_argument("--nice", type=int, default=0, help="their nice level (0: as important as the tests)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give a command after --, e.g. `python tests/load.py -- make test`")
    with cpu_hogs(args.hogs, args.nice):
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
