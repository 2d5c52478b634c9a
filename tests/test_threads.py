"""The thread count: cores actually usable (affinity, cgroup quota, other programs), and the tuner
that moves between counts during an answer. The tuner is fed step times here; bench/contention.py
measures what it does to real speed on a busy machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from homefire.engine.threads import ThreadTuner, busy_cores, choose_threads, quota_cores
from homefire.omp import SPINCOUNT, set_wait_policy


def test_cgroup_v2_quota_rounds_up(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "cpu.max").write_text("150000 100000\n")
    assert quota_cores(tmp_path, "0::/box\n") == 2
    (tmp_path / "box" / "cpu.max").write_text("max 100000\n")
    assert quota_cores(tmp_path, "0::/box\n") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    folder = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("50000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert quota_cores(tmp_path, "4:cpu,cpuacct:/docker/abc\n") == 1
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert quota_cores(tmp_path, "4:cpu,cpuacct:/docker/abc\n") is None


def fake_task(proc: Path, pid: int, tid: int, state: str, nice: int) -> None:
    folder = proc / str(pid) / "task" / str(tid)
    folder.mkdir(parents=True)
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    # cstime priority nice ...; a command name with a space and a parenthesis, as real ones can have.
    rest = " ".join(["1"] * 14 + [str(20 + nice), str(nice), "1"])
    (folder / "stat").write_text(f"{tid} (a (b) c) {state} {rest}\n")


def test_busy_cores_counts_running_threads_of_others_below_nice_10(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    fake_task(tmp_path, 10, 10, "R", 0)  # a busy loop
    fake_task(tmp_path, 11, 11, "R", 0)  # an OpenMP job: two running threads
    fake_task(tmp_path, 11, 12, "R", -5)
    fake_task(tmp_path, 12, 12, "S", 0)  # asleep
    fake_task(tmp_path, 13, 13, "R", 19)  # a niced batch job: it gets a small share, ours the rest
    fake_task(tmp_path, os.getpid(), os.getpid(), "R", 0)  # ourselves
    assert busy_cores(samples=2, interval_s=0, proc=tmp_path) == 3


def test_busy_cores_sees_a_real_busy_loop() -> None:
    from .load import cpu_hogs

    with cpu_hogs(1):
        assert busy_cores() >= 1


def test_an_explicit_count_is_used_as_given_and_not_adapted() -> None:
    choice = choose_threads(3)
    assert (choice.start, choice.most, choice.adaptive) == (3, 3, False)


def test_the_ui_reserve_is_kept() -> None:
    cores = len(os.sched_getaffinity(0))
    choice = choose_threads(None, reserve=1)
    assert choice.most == max(1, cores - 1)
    assert 1 <= choice.start <= choice.most


def feed(tuner: ThreadTuner, speed: dict[int, float], steps: int) -> list[int]:
    """Run `steps` decode steps where n threads take speed[n] seconds each; the counts used."""
    used = []
    for _ in range(steps):
        used.append(tuner.current)
        tuner.record(speed[tuner.current])
    return used


def test_tuner_stays_on_the_fastest_count_and_rarely_tries_the_other() -> None:
    tuner = ThreadTuner(most=2, current=2)
    used = feed(tuner, {1: 0.016, 2: 0.010}, 600)
    assert used[-1] == 2
    assert used.count(1) / len(used) < 0.05  # tries back off: a few percent at most on a steady machine


def test_tuner_moves_when_a_hog_makes_the_current_count_slow() -> None:
    tuner = ThreadTuner(most=2, current=2)
    feed(tuner, {1: 0.016, 2: 0.010}, 200)
    used = feed(tuner, {1: 0.017, 2: 0.500}, 12)  # a spinning hog started: 2 threads collapse
    assert used[-1] == 1
    assert used.count(2) <= 5  # noticed within a few slow steps
    used = feed(tuner, {1: 0.017, 2: 0.500}, 400)
    assert used.count(2) <= 10  # and going back to look costs little


def test_tuner_takes_the_cores_back_when_the_hog_ends() -> None:
    tuner = ThreadTuner(most=2, current=1)
    feed(tuner, {1: 0.017, 2: 0.500}, 200)
    used = feed(tuner, {1: 0.016, 2: 0.010}, 800)
    assert used[-1] == 2


def test_tuner_climbs_one_step_at_a_time_on_many_cores() -> None:
    tuner = ThreadTuner(most=8, current=2)
    speed = {n: 0.08 / n for n in range(1, 9)}  # more is faster
    used = feed(tuner, speed, 3000)
    assert used[-1] >= 7


def test_wait_policy_default_and_the_users_choice_wins() -> None:
    env: dict[str, str] = {}
    assert set_wait_policy(env) and env == {"GOMP_SPINCOUNT": SPINCOUNT}
    for knob, value in (("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "300000")):
        env = {knob: value}
        assert not set_wait_policy(env) and env == {knob: value}


def test_the_wait_policy_is_set_before_llama_cpp_loads() -> None:
    """In a fresh process: importing homefire sets it, and libgomp (loaded by llama.cpp) reads it then."""
    code = (
        "import os, homefire, llama_cpp\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(os.environ.get('GOMP_SPINCOUNT'), 'libgomp' in maps)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [SPINCOUNT, "True"]


def test_the_engine_tries_other_counts_mid_answer_and_llama_cpp_follows() -> None:
    """Wiring, not speed: during a real answer the tuner tries a neighbour, and llama.cpp runs the count
    the tuner chose (bench/contention.py measures what that does on a busy machine)."""
    import llama_cpp as L

    from homefire.config import GenerationSettings
    from homefire.engine import Engine

    engine = Engine(n_ctx=1024, n_threads=None)
    try:
        assert engine._tuners is not None or len(os.sched_getaffinity(0)) == 1
        if engine._tuners is None:
            return
        decode, _ = engine._tuners
        decode.room = None  # try both ways whatever else runs now (a busy machine would stop it going up)
        settings = GenerationSettings(temperature=0.0, max_tokens=300, seed=1)
        engine.generate([{"role": "user", "content": "Write a very long story about a dragon."}], settings)
        assert decode.switches >= 1 and len(decode.estimate) >= 2  # it timed more than one count
        assert L.llama_n_threads(engine._ctx) == decode.current == engine.n_threads
    finally:
        engine.close()


def test_tuner_takes_no_core_another_program_is_using() -> None:
    """Two homefires at one thread each: trying a second thread would win time from the other, and the
    other would answer in kind; with no free core the tuner does not try."""
    free = [1]
    tuner = ThreadTuner(most=2, current=1, room=lambda: free[0])
    assert 2 not in feed(tuner, {1: 0.016, 2: 0.012}, 600)
    free[0] = 2  # the other one finished
    assert feed(tuner, {1: 0.016, 2: 0.010}, 1200)[-1] == 2


def test_tuner_gives_a_core_back_to_another_program_unless_it_gains_much() -> None:
    """Started on two threads beside another homefire on one: unless two are 1.5x faster, it drops to one
    (keeping two would win a little for itself and cost the other more)."""
    tuner = ThreadTuner(most=2, current=2, room=lambda: 1)
    assert feed(tuner, {1: 0.016, 2: 0.013}, 400)[-1] == 1
    tuner = ThreadTuner(most=2, current=2, room=lambda: 1)
    assert feed(tuner, {1: 0.030, 2: 0.012}, 400)[-1] == 2  # much faster: a niced or brief neighbour
