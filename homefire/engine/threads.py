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


def busy_cores(samples: int = 3, interval_s: float = 0.01, stat: Path = Path("/proc/stat")) -> int:
    """Threads of other programs running right now (the kernel's procs_running, less this one).

    The least of a few samples: a program that only woke up for a moment is not a hog."""
    seen = []
    for i in range(samples):
        try:
            for line in stat.read_text().splitlines():
                if line.startswith("procs_running "):
                    seen.append(int(line.split()[1]) - 1)  # the reader itself is running
                    break
        except (OSError, ValueError):
            return 0
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0, min(seen)) if seen else 0


@dataclass(frozen=True)
class ThreadChoice:
    """Threads to start with, the most worth trying, and whether to adapt during an answer."""

    start: int
    most: int
    adaptive: bool


def choose_threads(requested: int | None = None, reserve: int = 0) -> ThreadChoice:
    """The thread count for llama.cpp. `requested` (the user's --threads or setting) is used as given;
    otherwise: usable cores (affinity, cgroup quota) less `reserve` (cores kept for a UI), starting
    below that when other programs are running now, and adapting during each answer."""
    if requested is not None:
        return ThreadChoice(max(1, requested), max(1, requested), adaptive=False)
    cores = affinity_cores()
    quota = quota_cores()
    if quota is not None:
        cores = min(cores, quota)
    most = max(1, cores - max(0, reserve))
    start = max(1, min(most, cores - busy_cores()))
    return ThreadChoice(start, most, adaptive=most > 1)


@dataclass
class ThreadTuner:
    """Picks the thread count step by step from measured speed (seconds per token).

    It keeps an estimate per count, mostly uses the fastest, and now and then tries a neighbour
    (one thread fewer or more) for a few steps. A try that is clearly slower is cut short after one
    step, and trying again waits twice as long each time it loses, so on a steady machine the cost
    is a few percent. When the current count suddenly gets slower (a hog started), it looks again
    at once.
    """

    most: int
    current: int
    probe_steps: int = 3  # steps a neighbour is timed for
    first_gap: int = 12  # steps between tries, doubled each time a try loses
    max_gap: int = 384
    alpha: float = 0.3  # weight of the newest step in an estimate
    estimate: dict[int, float] = field(default_factory=dict)
    _gap: int = 0
    _since_probe: int = 0
    _probe_left: int = 0
    _home: int = 0  # the count to return to after a try
    _slow_streak: int = 0
    _skip: int = 0  # steps not measured after a change (the thread pool settles)
    switches: int = 0

    def __post_init__(self) -> None:
        self.most = max(1, self.most)
        self.current = min(max(1, self.current), self.most)
        self._gap = self.first_gap
        self._home = self.current

    def _best(self) -> int:
        return min(self.estimate, key=lambda n: self.estimate[n]) if self.estimate else self.current

    def _set(self, n: int) -> None:
        if n != self.current:
            self.current = n
            self.switches += 1
            self._skip = 1

    def _try_neighbour(self) -> None:
        home = self.current
        options = [n for n in (home - 1, home + 1) if 1 <= n <= self.most]
        if not options:
            return
        # The neighbour measured longest ago (or never) is the one worth looking at.
        options.sort(key=lambda n: n in self.estimate)
        self._home, self._probe_left, self._since_probe = home, self.probe_steps, 0
        self.estimate.pop(options[0], None)  # measured afresh: the machine may have changed
        self._set(options[0])

    def record(self, seconds: float) -> int:
        """Account one step's time per token; returns the thread count for the next step."""
        if self.most <= 1 or seconds <= 0:
            return self.current
        if self._skip:
            self._skip -= 1
            return self.current
        n = self.current
        old = self.estimate.get(n)
        self.estimate[n] = seconds if old is None else (1 - self.alpha) * old + self.alpha * seconds
        if self._probe_left:
            home = self.estimate.get(self._home)
            self._probe_left -= 1
            lost_now = home is not None and seconds > 2 * home  # a clear loss: one step is enough
            if self._probe_left == 0 or lost_now:
                self._probe_left = 0
                best = self._best() if not lost_now else self._home
                if best == self._home:
                    self._gap = min(self.max_gap, self._gap * 2)
                else:
                    self._gap = self.first_gap  # things changed: keep looking around
                self._set(best)
            return self.current
        self._since_probe += 1
        # The current count got much slower than it was: something else started. Look now.
        self._slow_streak = self._slow_streak + 1 if old is not None and seconds > 1.5 * old else 0
        if self._slow_streak >= 3:
            self._slow_streak = 0
            self._gap = self.first_gap
            self._try_neighbour()
        elif self._since_probe >= self._gap:
            self._try_neighbour()
        return self.current
