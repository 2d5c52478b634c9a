"""Benchmark: the batching scheduler (homefire/engine/batch.py) against the engine, side by side in one process.

1. one job: decode tok/s through the Scheduler vs Engine.stream (same prompt, threads, sampling; runs alternate)
2. 4 jobs at once: aggregate decode tok/s vs one job through the Scheduler
3. the follow-up turn of a ~2,000-token chat: time to first token with prefix reuse vs the same prompt cold

Decode tok/s = text pieces (tokens) after the first / (last piece - first piece); for 4 jobs, the pieces of
all four while all four answer (after the last one's first piece, up to the first one's last). TTFT = submit
-> first text.

    python bench/batch.py [--runs 5] [--tokens 128] [--threads N] [--model NAME|PATH]

Prints a table, then one JSON line. The API server's own bench (bench/api.py) adds HTTP on top.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HOMEFIRE_HOME", str(Path("/tmp") / f"homefire-bench-{os.getuid()}"))

from homefire.config import GenerationSettings  # noqa: E402
from homefire.engine import Engine  # noqa: E402
from homefire.engine.batch import Job, Scheduler, Stream  # noqa: E402

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
STORIES = [
    "Write a detailed story about a lighthouse keeper who finds a message in a bottle.",
    "Write a detailed story about a baker who opens a shop on the moon.",
    "Write a detailed story about a girl who teaches her dog to paint.",
    "Write a detailed story about an old sailor who builds a ship in his garden.",
]
N_CTX = 4096


def settings(tokens: int) -> GenerationSettings:
    return GenerationSettings(temperature=0.0, max_tokens=tokens, repeat_penalty=1.1, repeat_last_n=64, seed=1)


def ask(text: str) -> list[dict[str, str]]:
    return [SYSTEM, {"role": "user", "content": text}]


def timed(pieces: Any) -> tuple[list[float], str]:
    """When each non-empty text piece arrived (perf_counter), and the text, for a stream started just before."""
    stamps: list[float] = []
    out = []
    for piece in pieces:
        if piece:
            stamps.append(time.perf_counter())
        out.append(piece)
    return stamps, "".join(out)


def rate(stamps: list[float], start: float, end: float) -> float:
    """Pieces per second that arrived after `start` and up to `end` (one piece is one token but for rare
    multi-byte characters, the same for every side)."""
    return sum(start < t <= end for t in stamps) / (end - start)


def run_engine(engine: Engine, text: str, tokens: int) -> float:
    engine.reset()
    stamps, _ = timed(engine.stream(ask(text), settings(tokens)))
    return rate(stamps, stamps[0], stamps[-1])


def submit(sched: Scheduler, text: str, tokens: int) -> Stream:
    return sched.submit(Job(sched.engine.fit(ask(text), tokens).tokens, settings(tokens)))


def run_single(sched: Scheduler, text: str, tokens: int) -> float:
    sched.clear_cache()
    stamps, _ = timed(submit(sched, text, tokens))
    return rate(stamps, stamps[0], stamps[-1])


def run_four(sched: Scheduler, tokens: int) -> float:
    """Aggregate decode rate while all four answer: pieces of all four between the last one's first piece
    and the first one's last piece."""
    sched.clear_cache()
    streams = [submit(sched, text, tokens) for text in STORIES]
    got: list[list[float]] = []

    def read(stream: Stream) -> None:
        got.append(timed(stream)[0])

    threads = [threading.Thread(target=read, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start, end = max(g[0] for g in got), min(g[-1] for g in got)
    assert end > start, "the four answers did not overlap: use more --tokens"
    return sum(rate(g, start, end) for g in got)


def long_chat(engine: Engine, target: int) -> list[dict[str, str]]:
    """A chat of about `target` prompt tokens: alternating questions and (fixed) answers."""
    messages = [SYSTEM]
    i = 0
    while len(engine.prompt_tokens(messages)) < target:
        messages.append({"role": "user", "content": f"Tell me fact number {i} about the sea, in a few sentences."})
        messages.append(
            {
                "role": "assistant",
                "content": f"Fact {i}: the sea covers most of the planet, holds most of its water and "
                "most of its life, and moves heat from the equator towards the poles through currents "
                f"that take centuries to turn over. Tides rise and fall twice a day near coast {i}.",
            }
        )
        i += 1
    return messages


def follow_up_ttft(sched: Scheduler, chat: list[dict[str, str]], cold: bool) -> tuple[float, int]:
    """TTFT of the follow-up turn after the chat's last turn was answered through the scheduler."""
    sched.clear_cache()
    engine = sched.engine
    first_turn = [*chat, {"role": "user", "content": "What is the deepest point of the sea?"}]
    answer = "".join(sched.submit(Job(engine.fit(first_turn, 32).tokens, settings(32))))
    follow = [*first_turn, {"role": "assistant", "content": answer}, {"role": "user", "content": "And the highest?"}]
    if cold:
        sched.clear_cache()
    t0 = time.perf_counter()
    stream = sched.submit(Job(engine.fit(follow, 16).tokens, settings(16)))
    stamps, _ = timed(stream)
    return stamps[0] - t0, stream.result.cached_tokens


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="default: the engine's own choice")
    ap.add_argument("--model", default="default")
    ap.add_argument("--chat-tokens", type=int, default=2000)
    args = ap.parse_args()

    engine = Engine(args.model, n_ctx=N_CTX, n_threads=args.threads)
    sched = Scheduler(engine, slots=4, max_queue=16)
    chat = long_chat(engine, args.chat_tokens)
    chat_tokens = len(engine.prompt_tokens(chat))
    run_engine(engine, STORIES[0], 16)  # warm-up both
    run_single(sched, STORIES[0], 16)
    r: dict[str, list[float]] = {"engine": [], "single": [], "four": [], "cold_ttft": [], "warm_ttft": []}
    cached = 0
    for i in range(args.runs):
        for side in ("engine", "single") if i % 2 == 0 else ("single", "engine"):
            if side == "engine":
                r["engine"].append(run_engine(engine, STORIES[0], args.tokens))
            else:
                r["single"].append(run_single(sched, STORIES[0], args.tokens))
        r["four"].append(run_four(sched, args.tokens))
        for cold in (True, False) if i % 2 == 0 else (False, True):
            ttft, reused = follow_up_ttft(sched, chat, cold)
            r["cold_ttft" if cold else "warm_ttft"].append(ttft * 1000)
            if not cold:
                cached = reused
    sched.close()
    engine.close()
    med = {k: statistics.median(v) for k, v in r.items()}
    ratio = {
        "single_vs_engine": med["single"] / med["engine"],
        "four_vs_single": med["four"] / med["single"],
        "followup_ttft_vs_cold": med["warm_ttft"] / med["cold_ttft"],
    }
    targets = {"single_vs_engine_min": 0.95, "four_vs_single_min": 1.5, "followup_ttft_vs_cold_max": 0.2}
    threads = args.threads if args.threads is not None else f"auto (started at {engine.n_threads})"
    print(f"model {args.model}, threads {threads}, {args.tokens} tokens, median of {args.runs} runs")
    print(f"{'':<52}{'value':>10}{'baseline':>10}{'ratio':>8}{'target':>8}")
    rows = [
        ("1 job decode tok/s (Scheduler vs Engine)", med["single"], med["engine"], ratio["single_vs_engine"], ">=0.95"),
        ("4 jobs aggregate decode tok/s (vs 1 job)", med["four"], med["single"], ratio["four_vs_single"], ">=1.5"),
        (
            f"follow-up TTFT ms, {chat_tokens}-token chat (reuse vs cold)",
            med["warm_ttft"],
            med["cold_ttft"],
            ratio["followup_ttft_vs_cold"],
            "<=0.2",
        ),
    ]
    for label, value, base, rt, target in rows:
        print(f"{label:<52}{value:>10.1f}{base:>10.1f}{rt:>7.2f}x{target:>8}")
    print(f"{'prompt tokens reused on the follow-up':<52}{cached:>10}")
    ok = ratio["single_vs_engine"] >= 0.95 and ratio["four_vs_single"] >= 1.5 and ratio["followup_ttft_vs_cold"] <= 0.2
    print(
        json.dumps(
            {
                "bench": "batch",
                "model": args.model,
                "threads": args.threads,
                "tokens": args.tokens,
                "runs": args.runs,
                "chat_tokens": chat_tokens,
                "cached_tokens": cached,
                "median": med,
                "ratio": ratio,
                "targets": targets,
                "pass": ok,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
