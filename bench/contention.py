"""Speed of the default model on a busy machine: homefire's own choice against every fixed setting.

Each cell is a fresh `homefire` engine in a child process (the wait policy is read when llama.cpp
loads), answering one greedy question while the bench runs a hog next to it: nothing, a Python busy
loop at nice 0 or 19, an OpenMP program (a small C matmul loop compiled here with gcc -fopenmp, the
way a PyTorch job waits: spinning at barriers), two busy loops, a second homefire answering at the
same time, and a hog that starts halfway through the answer. The hogs are children of the bench,
killed when the cell ends, and each also stops by itself after a deadline.

The fixed settings are threads 1..N x {spin (libgomp's default wait), passive}; "homefire" is what
a user gets with no options: homefire/omp.py's short spin and engine/threads.py's choice, adapting
during the answer. Each cell runs --repeat times (settings interleaved, the best run counts, for every
setting alike); ratios are against the best fixed setting for the same condition, in this run.
Prints a table and one JSON line. Run it alone: `flock /tmp/homefire-heavy.lock make bench-contention`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOG_DEADLINE_S = 90  # a hog outlives a crashed bench by at most this long

OMP_HOG_C = r"""
/* A CPU-bound OpenMP program: small matrix products in a parallel loop, a barrier after each,
   like a training step. Stops by itself after argv[1] seconds. */
#include <omp.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    double deadline = argc > 1 ? atof(argv[1]) : 60.0;
    enum { N = 96 };
    static float a[N][N], b[N][N], c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { a[i][j] = (float)(i + j) / N; b[i][j] = (float)(i - j) / N; }
    double start = omp_get_wtime();
    while (omp_get_wtime() - start < deadline) {
        #pragma omp parallel for
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
                c[i][j] = s;
            }
        a[0][0] = c[N - 1][N - 1] * 1e-9f;
    }
    return (int)c[0][0];
}
"""

BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"

# A long greedy answer (the default model writes ~560 tokens for it), after a ~300-token prompt.
NOTES = " ".join(
    f"Note {i}: the {c} dragon of the {p} kept {n} {t} in a cave by the sea."
    for i, (c, p, n, t) in enumerate(
        [
            ("red", "north", "seven", "golden cups"),
            ("green", "valley", "twelve", "silver keys"),
            ("blue", "islands", "three", "old maps"),
            ("black", "mountain", "forty", "copper coins"),
            ("white", "forest", "nine", "glass beads"),
            ("grey", "river", "two", "iron crowns"),
        ]
        * 3
    )
)
QUESTION = f"Here are my notes. {NOTES}\n\nWrite a very long story about a dragon."


@dataclass(frozen=True)
class Setting:
    name: str
    threads: int | None  # None: homefire's choice
    env: dict[str, str]


def settings(cores: int, spins: list[str], homefire_spins: list[str]) -> list[Setting]:
    out = [Setting("homefire", None, {})]
    # homefire's thread choice with other spin counts: how the default in homefire/omp.py was picked.
    out += [Setting(f"homefire spin={n}", None, {"GOMP_SPINCOUNT": n}) for n in homefire_spins]
    for n in range(1, cores + 1):
        for spin in spins:
            if spin == "passive":
                out.append(Setting(f"{n}t passive", n, {"OMP_WAIT_POLICY": "passive"}))
            elif spin == "spin":  # libgomp's default, stated so homefire's own default does not apply
                out.append(Setting(f"{n}t spin", n, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "300000"}))
            else:
                out.append(Setting(f"{n}t spin={spin}", n, {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": spin}))
    return out


# -- the child: one answer, timed -----------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Answer QUESTION for at most spec['seconds'] of decoding; print one JSON line of speeds.

    With spec['signal_after'] it prints "started" after that many pieces, so the bench can start a
    hog mid-answer; a piece's time stamps are kept to measure the speed after the hog started."""
    import homefire  # noqa: F401  (the wait policy, before llama.cpp loads)
    from homefire.config import GenerationSettings
    from homefire.engine import Engine

    engine = Engine(n_ctx=2048, n_threads=spec["threads"], verify=False)
    cancel = threading.Event()
    stamps: list[float] = []
    settings = GenerationSettings(temperature=0.0, max_tokens=spec["max_tokens"], seed=1)
    deadline = None
    for _piece in engine.stream([{"role": "user", "content": QUESTION}], settings, cancel):
        now = time.time()
        stamps.append(now)
        if deadline is None:
            deadline = now + spec["seconds"]
        if len(stamps) == spec.get("signal_after"):
            print("started", flush=True)
        if now > deadline:
            cancel.set()
    stats = engine.last_stats
    assert stats is not None
    print(
        json.dumps(
            {
                "decode": stats.decode_tokens_per_s,
                "prefill": stats.prefill_tokens_per_s,
                "ttft": stats.time_to_first_token_s,
                "tokens": stats.completion_tokens,
                "stamps": stamps,
                "threads_end": engine.n_threads,
            }
        ),
        flush=True,
    )


# -- the bench ------------------------------------------------------------------------------


class Hogs:
    """Hog processes for one cell; stopped on exit whatever happened."""

    def __init__(self, omp_binary: Path | None):
        self.omp_binary = omp_binary
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, kind: str) -> None:
        cores = len(os.sched_getaffinity(0))
        if kind in ("busy0", "busy19", "busy0x2", "busy0-mid"):
            nice = 19 if kind == "busy19" else 0
            for _ in range(2 if kind == "busy0x2" else 1):
                cmd = [sys.executable, "-c", BUSY_LOOP, str(HOG_DEADLINE_S)]
                self.procs.append(subprocess.Popen(cmd, preexec_fn=lambda n=nice: os.nice(n)))  # noqa: PLW1509
        elif kind == "omp19":
            assert self.omp_binary is not None
            env = dict(os.environ, OMP_NUM_THREADS=str(cores))
            env.pop("OMP_WAIT_POLICY", None)
            env.pop("GOMP_SPINCOUNT", None)
            cmd = [str(self.omp_binary), str(HOG_DEADLINE_S)]
            self.procs.append(subprocess.Popen(cmd, env=env, preexec_fn=lambda: os.nice(19)))  # noqa: PLW1509
        time.sleep(0.3)  # let it get going

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []

    def __enter__(self) -> Hogs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(setting: Setting, spec: dict[str, Any]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update({k: v for k, v in setting.env.items() if v})
    spec = dict(spec, threads=setting.threads)
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"bench child failed with exit code {proc.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def cell(setting: Setting, condition: str, hogs: Hogs, spec: dict[str, Any]) -> dict[str, Any]:
    """One answer (two for 'pair') under one condition; decode is the sum for a pair."""
    if condition == "pair":
        a, b = spawn(setting, spec), spawn(setting, spec)
        ra, rb = result(a), result(b)
        return {
            "decode": ra["decode"] + rb["decode"],
            "prefill": ra["prefill"] + rb["prefill"],
            "ttft": max(ra["ttft"], rb["ttft"]),
            "each": [round(ra["decode"], 1), round(rb["decode"], 1)],
        }
    if condition == "busy0-mid":
        proc = spawn(setting, dict(spec, signal_after=spec["mid_after"]))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        started = time.time()
        if line.strip() == "started":
            hogs.start(condition)
        r = result(proc)
        after = [t for t in r["stamps"] if t > started + 0.3]  # from when the hog has started
        r["decode"] = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 2 else 0.0
        return r
    hogs.start(condition)
    return result(spawn(setting, spec))


CONDITIONS = {
    "idle": "nothing else",
    "busy19": "one busy loop, nice 19",
    "busy0": "one busy loop, nice 0",
    "omp19": "an OpenMP program, nice 19",
    "busy0x2": "two busy loops, nice 0",
    "pair": "two homefire answering (sum)",
    "busy0-mid": "busy loop starts mid-answer (after)",
}
TARGETS = {"idle": 0.97, "busy0": 0.85, "omp19": 0.85, "busy0x2": 0.7, "pair": 0.85, "busy0-mid": 0.8}


def compile_omp_hog(folder: Path) -> Path | None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    src, out = folder / "omp_hog.c", folder / "omp_hog"
    src.write_text(OMP_HOG_C)
    done = subprocess.run([cc, "-O2", "-fopenmp", str(src), "-o", str(out)], capture_output=True, text=True)
    return out if done.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="comma-separated, from: " + ", ".join(CONDITIONS)
    )
    ap.add_argument("--spins", default="spin,passive", help="fixed wait settings: spin, passive, or a GOMP_SPINCOUNT")
    ap.add_argument("--homefire-spins", default="", help="also homefire's threads with these GOMP_SPINCOUNTs")
    ap.add_argument("--seconds", type=float, default=3.0, help="decoding time per answer")
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=2, help="runs per cell, settings interleaved; the best counts")
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    cores = len(os.sched_getaffinity(0))
    conditions = [c for c in args.conditions.split(",") if c]
    for c in conditions:
        if c not in CONDITIONS:
            ap.error(f"unknown condition '{c}': use some of {', '.join(CONDITIONS)}")
    all_settings = settings(
        cores, [s for s in args.spins.split(",") if s], [s for s in args.homefire_spins.split(",") if s]
    )
    spec = {"seconds": args.seconds, "max_tokens": args.max_tokens, "mid_after": 40}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="homefire-contention-") as tmp:
        omp = compile_omp_hog(Path(tmp))
        if omp is None and any(c.startswith("omp") for c in conditions):
            print("no C compiler with OpenMP (gcc -fopenmp): skipping the OpenMP conditions", file=sys.stderr)
            conditions = [c for c in conditions if not c.startswith("omp")]
        for condition in conditions:
            results[condition] = {}
            for _ in range(args.repeat):
                for s in all_settings:
                    with Hogs(omp) as hogs:
                        r = cell(s, condition, hogs, spec)
                    print(
                        f"  {condition:<10} {s.name:<20} decode {r['decode']:7.1f} tok/s  "
                        f"prefill {r['prefill']:7.1f}  ttft {r['ttft']:.2f}s",
                        file=sys.stderr,
                        flush=True,
                    )
                    best = results[condition].setdefault(s.name, r)
                    best["decode"] = max(best["decode"], r["decode"])
                    best["prefill"] = max(best["prefill"], r["prefill"])
                    best["ttft"] = min(best["ttft"], r["ttft"])
    summary = report(results, conditions, all_settings)
    print(json.dumps(summary))
    return 0


def report(results: dict[str, dict[str, dict[str, Any]]], conditions: list[str], all_settings: list[Setting]) -> dict:
    fixed = [s.name for s in all_settings if s.threads is not None]
    print(f"\n{'condition':<34} {'homefire':>9} {'best fixed':>20} {'ratio':>6} {'target':>7}  prefill  ttft")
    out: dict[str, Any] = {"bench": "contention", "cores": len(os.sched_getaffinity(0)), "conditions": {}}
    for c in conditions:
        row = results[c]
        best = max(fixed, key=lambda n: row[n]["decode"])
        best_prefill = max(row[n]["prefill"] for n in fixed)
        best_ttft = min(row[n]["ttft"] for n in fixed)
        mine = row["homefire"]
        ratio = mine["decode"] / row[best]["decode"] if row[best]["decode"] else 0.0
        pre_ratio = mine["prefill"] / best_prefill if best_prefill else 0.0
        ttft_ratio = best_ttft / mine["ttft"] if mine["ttft"] else 0.0
        target = TARGETS.get(c)
        mark = "" if target is None else (" ok" if ratio >= target else " MISS")
        print(
            f"{CONDITIONS[c]:<34} {mine['decode']:9.1f} {row[best]['decode']:9.1f} {best:>10} {ratio:6.2f} "
            f"{'' if target is None else f'>={target:.2f}':>7}{mark:<5} {pre_ratio:5.2f}  {ttft_ratio:5.2f}"
        )
        out["conditions"][c] = {
            "homefire_decode": round(mine["decode"], 1),
            "best_fixed": best,
            "best_fixed_decode": round(row[best]["decode"], 1),
            "decode_ratio": round(ratio, 3),
            "prefill_ratio": round(pre_ratio, 3),
            "ttft_ratio": round(ttft_ratio, 3),
            "target": target,
            "all_decode": {n: round(r["decode"], 1) for n, r in row.items()},
        }
    print("(prefill and ttft: homefire vs the best fixed value of each, higher is better)")
    return out


if __name__ == "__main__":
    sys.exit(main())
