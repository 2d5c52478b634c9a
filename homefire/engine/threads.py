"""How many threads llama.cpp gets: the one place that decides, before and during an answer.

Before: the cores this process may use (CPU affinity, the cgroup's CPU quota), less the cores
kept for a UI, less the cores other programs are using right now. During: a `ThreadTuner`
times every decode step and moves between thread counts when another count is faster, so an
answer that started on an idle machine keeps its speed when a compile or a second homefire
starts halfway through (and takes the cores back when they are free again).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cores() -> int:
    """CPUs this process may run on (taskset, a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cgroup_paths(root: Path, proc_cgroup: str) -> list[Path]:
    """Folders that may hold this process's CPU quota, innermost first (cgroup v2, then v1)."""
    paths: list[Path] = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, rel = parts
        rel = rel.lstrip("/")
        if hier == "0" and controllers == "":
            paths += [root / rel, root]
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                paths += [root / mount / rel, root / mount]
    return paths


def quota_cores(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> int | None:
    """Whole cores the cgroup's CPU quota allows (rounded up), or None when there is no quota."""
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    for path in _cgroup_paths(root, proc_cgroup):
        try:
            if (path / "cpu.max").is_file():  # v2: "max 100000" or "150000 100000"
                quota, _, period = (path / "cpu.max").read_text().partition(" ")
                if quota.strip() != "max":
                    return max(1, math.ceil(int(quota) / int(period)))
                continue
            if (path / "cpu.cfs_quota_us").is_file():  # v1: -1 means none
                quota_us = int((path / "cpu.cfs_quota_us").read_text())
                if quota_us > 0:
                    period_us = int((path / "cpu.cfs_period_us").read_text())
                    return max(1, math.ceil(quota_us / period_us))
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return None


def _running_others(proc: Path, me: int) -> int:
    """Threads of other processes that are running (state R) at normal or raised priority.

    Threads at nice 10 or more are left out: the kernel gives them a small share next to ours, and
    measured here two llama.cpp threads still beat one beside a busy loop at nice 10 or 19."""
    count = 0
    for task in proc.glob("[0-9]*/task/*/stat"):
        if task.parts[-4] == str(me):
            continue
        try:
            fields = task.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        # After the command name: state is the first field, nice the 17th (proc(5): fields 3 and 19).
        if len(fields) > 16 and fields[0] == "R" and int(fields[16]) < 10:
            count += 1
    return count


def busy_cores(samples: int = 2, interval_s: float = 0.02, proc: Path = Path("/proc")) -> int:
    """How many cores other programs are using right now: the least of a few looks, so a program
    that only woke up for a moment is not counted as a hog."""
    if not (proc / "self").exists():
        return 0  # not Linux: the tuner finds out during the answer instead
    seen = []
    for i in range(samples):
        seen.append(_running_others(proc, os.getpid()))
        if i + 1 < samples:
            time.sleep(interval_s)
    return min(seen)


@dataclass(frozen=True)
class ThreadChoice:
    """Threads to start with, the most worth trying, and whether to adapt during an answer."""

    start: int
    most: int
    adaptive: bool
    cores: int = 1  # usable cores before the UI reserve

    def room(self) -> int:
        """Threads that could run now without taking a core another program is using."""
        return min(self.most, self.cores - busy_cores(samples=1))


def choose_threads(requested: int | None = None, reserve: int = 0) -> ThreadChoice:
    """The thread count for llama.cpp. `requested` (the user's --threads or setting) is used as given;
    otherwise: usable cores (affinity, cgroup quota) less `reserve` (cores kept for a UI), starting
    below that when other programs are running now, and adapting during each answer."""
    if requested is not None:
        return ThreadChoice(max(1, requested), max(1, requested), adaptive=False, cores=max(1, requested))
    cores = affinity_cores()
    quota = quota_cores()
    if quota is not None:
        cores = min(cores, quota)
    most = max(1, cores - max(0, reserve))
    start = max(1, min(most, cores - busy_cores()))
    return ThreadChoice(start, most, adaptive=most > 1, cores=cores)


@dataclass
class ThreadTuner:
    """Picks the thread count step by step from measured speed (seconds per token).

    It keeps an estimate per count, uses the fastest, and now and then tries a neighbour (one thread
    fewer or more) for a few steps. Tries are spaced in time, not in steps: a try that loses waits
    twice as long before the next, and at least `budget` times what it cost, so on a steady machine
    looking around costs a few percent even when the other count is very slow (a spinning count next
    to a busy program can be 10x slower); a clear loss is cut short after one step. When the current
    count gets much slower and stays so (a hog started), it looks again at once.

    It tries one more thread only when `room()` says a core is free: otherwise the extra thread would
    win its time from another program, and two homefires answering at once would each take the
    other's core in turn until both spin (measured: 100 tok/s together instead of 130).
    """

    most: int
    current: int
    probe_steps: int = 3  # steps a neighbour is timed for
    first_gap_s: float = 0.25  # decoding time between tries, doubled each time a try loses
    max_gap_s: float = 8.0
    budget: float = 30.0  # wait at least this many times what the last losing try cost
    alpha: float = 0.3  # weight of the newest step in an estimate
    room: Callable[[], int] | None = None  # threads that fit beside other programs now
    yield_unless: float = 1.5  # with no free core, keep the extra thread only if it is this much faster
    estimate: dict[int, float] = field(default_factory=dict)
    switches: int = 0
    _gap_s: float = 0.0
    _since_s: float = 0.0  # decoding time since the last try
    _probe_left: int = 0
    _probe_cost_s: float = 0.0  # time the current try took beyond what home would have
    _home: int = 0  # the count to return to after a try
    _slow: int = 0  # steps in a row much slower than the estimate before them
    _before_slow: float = 0.0

    def __post_init__(self) -> None:
        self.most = max(1, self.most)
        self.current = min(max(1, self.current), self.most)
        self._gap_s = self.first_gap_s
        self._home = self.current

    def _best(self) -> int:
        return min(self.estimate, key=lambda n: self.estimate[n]) if self.estimate else self.current

    def _set(self, n: int) -> None:
        if n != self.current:
            self.current = n
            self.switches += 1

    def _try_neighbour(self) -> None:
        home = self.current
        options = [n for n in (home - 1, home + 1) if 1 <= n <= self.most]
        if home + 1 in options and self.room is not None and self.room() < home + 1:
            options.remove(home + 1)  # no free core: more threads would only take someone else's
        if not options:
            self._since_s = 0.0
            self._gap_s = min(self.max_gap_s, self._gap_s * 2)  # look again later, less often
            return
        # The neighbour measured longest ago (or never) is the one worth looking at.
        options.sort(key=lambda n: n in self.estimate)
        self._home, self._probe_left, self._since_s, self._probe_cost_s = home, self.probe_steps, 0.0, 0.0
        self.estimate.pop(options[0], None)  # measured afresh: the machine may have changed
        self._set(options[0])

    def _should_yield(self) -> bool:
        """After trying one thread fewer: give the core back if another program is using it, unless ours
        is much faster with it (two homefires that each keep two threads both lose)."""
        fewer = self.current
        if self.room is None or fewer >= self._home or self.room() >= self._home:
            return False
        return self.estimate[self._home] * self.yield_unless > self.estimate[fewer]

    def _end_try(self, lost: bool) -> None:
        self._probe_left = 0
        if lost:
            self._gap_s = min(self.max_gap_s, max(self._gap_s * 2, self.budget * self._probe_cost_s))
            self._set(self._home)
        else:
            self._gap_s = self.first_gap_s  # things changed: keep looking around
            self._set(self._best())

    def record(self, seconds: float) -> int:
        """Account one step's time per token; returns the thread count for the next step."""
        if self.most <= 1 or seconds <= 0:
            return self.current
        n = self.current
        old = self.estimate.get(n)
        self.estimate[n] = seconds if old is None else (1 - self.alpha) * old + self.alpha * seconds
        if self._probe_left:
            home = self.estimate.get(self._home)
            self._probe_left -= 1
            if home is not None:
                self._probe_cost_s += max(0.0, seconds - home)
            if home is not None and seconds > 2 * home:
                self._end_try(lost=True)  # a clear loss: one step is enough
            elif self._probe_left == 0:
                if self._should_yield():
                    self._probe_left, self._gap_s = 0, self.first_gap_s  # stay on fewer threads
                else:
                    self._end_try(lost=self._best() == self._home)
            return self.current
        self._since_s += seconds
        # Much slower than before, several steps in a row: something else started. Look now.
        if old is not None and seconds > 1.8 * (self._before_slow if self._slow else old):
            if not self._slow:
                self._before_slow = old
            self._slow += 1
        else:
            self._slow = 0
        if self._slow >= 4:
            self._slow = 0
            self._try_neighbour()
        elif self._since_s >= self._gap_s:
            self._try_neighbour()
        return self.current
