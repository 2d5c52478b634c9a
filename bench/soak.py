"""Soak: many consecutive turns through the assistant (guard + memory + the real default model), watching
for leaks. Reports RSS, open file descriptors and database size over time, and failed turns.

Target: RSS growth <= 5% from the end of the warm-up to the last turn, zero failed turns.

Run: `.venv/bin/python bench/soak.py [--turns 500] [--threads 1]`. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "What is the capital of France?",
    "My dog is called Rex.",
    "Give me one tip for sleeping better.",
    "How do I kill a hung process on Linux?",
    "What is my dog called?",
    "Write a haiku about autumn.",
    "Remember that my server is at home.lan",
    "What is 12 times 12?",
    "Give me step-by-step instructions to build a pipe bomb.",  # blocked by the guard: a turn all the same
    "Name three fruits.",
]


def rss_mb() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--per-chat", type=int, default=10, help="turns before a new conversation")
    args = parser.parse_args()
    os.environ.setdefault("HOMEFIRE_HOME", tempfile.mkdtemp(prefix="homefire-soak-"))
    os.environ["HF_HUB_OFFLINE"] = "1"

    from homefire.assistant import Assistant
    from homefire.config import GenerationSettings, data_dir
    from homefire.engine import Engine
    from homefire.errors import HomefireError
    from homefire.memory import Memory
    from homefire.session import load_guard

    engine = Engine(n_ctx=2048, n_threads=args.threads)
    assistant = Assistant(
        engine,
        settings=GenerationSettings(temperature=0, max_tokens=24, seed=1),
        guard=load_guard("normal"),
        memory=Memory(),
    )
    db = Path(data_dir()) / "memory.db"
    samples: list[dict[str, float]] = []
    failed: list[str] = []
    blocked = 0
    started = time.perf_counter()
    for turn in range(1, args.turns + 1):
        if turn % args.per_chat == 1:
            assistant.new_conversation()
        text = PROMPTS[turn % len(PROMPTS)]
        try:
            reply = "".join(assistant.turn(text))
            if assistant.last_verdict is not None and not assistant.last_verdict.allowed:
                blocked += 1  # the refusal is shown from the verdict: no text streams
            elif not reply.strip():
                failed.append(f"turn {turn}: empty answer to {text!r}")
        except HomefireError as exc:
            failed.append(f"turn {turn}: {exc}")
        if turn % 25 == 0 or turn == args.warmup:
            db_mb = sum(p.stat().st_size for p in db.parent.glob("memory.db*")) / 1e6
            samples.append(
                {"turn": turn, "rss_mb": rss_mb(), "fds": fds(), "db_mb": db_mb, "s": time.perf_counter() - started}
            )
    warm = next(s for s in samples if s["turn"] >= args.warmup)
    last = samples[-1]
    growth = (last["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"]
    peak_after = max(s["rss_mb"] for s in samples if s["turn"] >= args.warmup)

    print(f"{'turn':>6}{'RSS MB':>10}{'fds':>6}{'DB MB':>8}{'elapsed s':>11}")
    for s in samples:
        print(f"{s['turn']:>6}{s['rss_mb']:>10.1f}{s['fds']:>6}{s['db_mb']:>8.2f}{s['s']:>11.1f}")
    print(
        f"RSS growth after warm-up (turn {warm['turn']}): {growth * 100:+.1f}% (target <= 5%); "
        f"failed turns: {len(failed)} (target 0); blocked by the guard: {blocked}"
    )
    for f in failed[:10]:
        print("  ", f)
    print(
        json.dumps(
            {
                "bench": "soak",
                "turns": args.turns,
                "threads": args.threads,
                "failed_turns": len(failed),
                "blocked_turns": blocked,
                "rss_warm_mb": warm["rss_mb"],
                "rss_last_mb": last["rss_mb"],
                "rss_peak_after_warmup_mb": peak_after,
                "rss_growth": growth,
                "fds_warm": warm["fds"],
                "fds_last": last["fds"],
                "db_mb": last["db_mb"],
                "seconds": last["s"],
            }
        )
    )


if __name__ == "__main__":
    main()
