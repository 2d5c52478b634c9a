"""The chat app's start-up and responsiveness, measured in fresh processes.

- start: wall time from launching `python -m homefire` (headless) to its first screen being up and
  taking keys, the model still loading in the background; median of N runs, with a bare `python -c pass`
  and a bare Textual app measured side by side as the baseline.
- stall: while the real default model streams a long answer, the longest gap between ticks of a 5 ms
  timer on the UI's event loop (the app picks its own threads, as for a user).

Run: `.venv/bin/python bench/tui.py [--runs 5]`. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

START = r"""
import os, time
from homefire.app import HomefireApp
app = HomefireApp(guard="off")
def up():
    print("UP", time.time(), flush=True)
    os._exit(0)  # now: the model goes on loading in a worker thread, which a normal exit would wait for
app.call_after_refresh(up)
app.run(headless=True)
"""

BARE = r"""
import os, time
from textual.app import App
from textual.widgets import Static
class A(App):
    def compose(self):
        yield Static("hi")
    def on_mount(self):
        self.call_after_refresh(self.up)
    def up(self):
        print("UP", time.time(), flush=True)
        os._exit(0)
A().run(headless=True)
"""

STALL = r"""
import asyncio, json, time
from homefire.app import HomefireApp
from homefire.config import GenerationSettings

async def main():
    app = HomefireApp(settings=GenerationSettings(temperature=0, max_tokens=200, seed=1), guard="off", incognito=True)
    gaps = []
    async def ticker():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.ready:
            await pilot.pause(0.05)
        task = asyncio.get_running_loop().create_task(ticker())
        app.query_one("#prompt").value = "Write a very long story about a dragon."
        await pilot.press("enter")
        while not app.answering:
            await pilot.pause(0.01)
        while app.answering:
            await pilot.pause(0.05)
        task.cancel()
        stats = app.assistant.last_stats
    gaps.sort()
    print(json.dumps({"worst_ms": gaps[-1] * 1000, "p99_ms": gaps[int(len(gaps) * 0.99)] * 1000,
                      "ticks": len(gaps), "tokens": stats.completion_tokens, "tok_s": stats.decode_tokens_per_s,
                      "threads": app.n_threads}))

asyncio.run(main())
"""


def timed(code: str, env: dict[str, str]) -> float:
    """Seconds from launching the process to its "UP" line (or to its end, for code that prints none)."""
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, timeout=120)
    up = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("UP ")]
    return (float(up[0]) if up else time.time()) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, HOMEFIRE_HOME=tempfile.mkdtemp(prefix="bench-tui-"), HF_HUB_OFFLINE="1")
    rows = {}
    for name, code in (
        ("python -c pass", "pass"),
        ("bare Textual app", BARE),
        ("homefire first screen (model loading)", START),
    ):
        timed(code, env)  # warm the page cache
        rows[name] = statistics.median(timed(code, env) for _ in range(args.runs))
    out = subprocess.run([sys.executable, "-c", STALL], env=env, check=True, capture_output=True, text=True)
    stall = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'measure':<40}{'value':>10}")
    for name, seconds in rows.items():
        print(f"{name:<40}{seconds * 1000:>7.0f} ms")
    print(f"{'loop worst gap (streaming)':<40}{stall['worst_ms']:>7.1f} ms")
    print(f"{'loop p99 gap (streaming)':<40}{stall['p99_ms']:>7.1f} ms")
    print(f"{'answer':<40}{stall['tokens']:>6} tokens at {stall['tok_s']:.0f} tok/s on {stall['threads']} thread(s)")
    print(
        json.dumps(
            {
                "bench": "tui",
                "python_s": rows["python -c pass"],
                "bare_textual_s": rows["bare Textual app"],
                "first_screen_s": rows["homefire first screen (model loading)"],
                "first_screen_vs_bare_textual": rows["homefire first screen (model loading)"]
                / rows["bare Textual app"],
                **{f"stream_{k}": v for k, v in stall.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
