"""How fast Ctrl-C stops `homefire ask` mid-answer on a busy machine (the issue's 50 of 50 within 2 s).

Each run starts a long greedy answer with one busy loop per core running, waits until it streams,
sends SIGINT once, and times until the process exits. Prints a table and one JSON line.
The pass/fail of exit 130 is also a test (tests/test_cli.py); the time is measured only here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load import cpu_hogs  # noqa: E402

ASK = ["ask", "--guard", "off", "--incognito", "--temperature", "0", "--max-tokens", "3000"]


def one(home: Path) -> tuple[int | None, float, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "homefire", *ASK, "Write a very long story about a dragon."],
        env=dict(os.environ, HOMEFIRE_HOME=str(home), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert proc.stdout is not None
    if not proc.stdout.read(20) or proc.poll() is not None:
        proc.kill()
        return None, 0.0, "did not start streaming"
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, 60.0, "still running 60 s later"
    return proc.returncode, time.perf_counter() - sent, err.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--hogs", type=int, default=None, help="busy loops (default one per core)")
    args = ap.parse_args()
    codes, times, bad = [], [], []
    with tempfile.TemporaryDirectory() as tmp, cpu_hogs(args.hogs):
        for _ in range(args.runs):
            code, seconds, err = one(Path(tmp))
            codes.append(code)
            times.append(seconds)
            if code != 130 or "Traceback" in err:
                bad.append(err[-200:])
    ok = sum(1 for c, t in zip(codes, times, strict=True) if c == 130 and t <= 2.0)
    print(f"{'runs':>5} {'exit 130':>9} {'within 2 s':>11} {'p50 s':>7} {'max s':>7}")
    print(f"{args.runs:>5} {codes.count(130):>9} {ok:>11} {statistics.median(times):7.3f} {max(times):7.3f}")
    for b in bad[:3]:
        print("  failed:", b)
    print(
        json.dumps(
            {
                "bench": "ctrl_c",
                "runs": args.runs,
                "exit_130": codes.count(130),
                "within_2s": ok,
                "p50_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
            }
        )
    )
    return 0 if ok == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
