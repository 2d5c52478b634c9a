"""Benchmark: asking about a ~3,000-token document cold (document in the prompt) vs from a cartridge.

Alternating runs in one process on the default model: time to first token cold vs restored,
build time, bytes per token of the saved state for f16 and q8_0 KV caches, whether answers
from the cartridge equal answers with the document in the prompt (one thread, greedy), and
how often q8_0 answers agree with f16 ones on a fixed question set.

    python bench/cartridge.py [--runs 3] [--threads 2]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["HOMEFIRE_HOME"] = tempfile.mkdtemp(prefix="homefire-bench-cartridge-")

from homefire.config import GenerationSettings  # noqa: E402
from homefire.engine import Engine  # noqa: E402
from homefire.engine import cartridge as C  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "tests" / "data" / "mpl-2.0-sections-1-7.txt"
QUESTIONS = [
    "What is a Contributor?",
    "What does Covered Software mean?",
    "When do the rights granted under this License terminate?",
    "What is the Disclaimer of Warranty about?",
    "Can You distribute the Covered Software in Executable Form?",
]
GREEDY = GenerationSettings(temperature=0.0, max_tokens=32, seed=1)


def ask(engine: Engine, system: dict[str, str], question: str) -> tuple[str, float]:
    text = engine.generate([system, {"role": "user", "content": question}], GREEDY)
    assert engine.last_stats is not None
    return text, engine.last_stats.time_to_first_token_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    f16 = Engine(n_ctx=4096, n_threads=args.threads)
    started = time.perf_counter()
    cart = C.build("doc", [DOC], f16)
    build_s = time.perf_counter() - started
    system = C.system_message([cart.documents])

    cold, restored, restore_only = [], [], []
    for i in range(args.runs):
        question = QUESTIONS[i % len(QUESTIONS)]
        for side in ("cold", "restored") if i % 2 == 0 else ("restored", "cold"):
            f16.reset()
            if side == "cold":
                started = time.perf_counter()
                ask(f16, system, question)
                cold.append(f16.last_stats.time_to_first_token_s)  # type: ignore[union-attr]
            else:
                started = time.perf_counter()
                C.activate(f16, [cart])
                loaded = time.perf_counter() - started
                _, ttft = ask(f16, system, question)
                restore_only.append(loaded)
                restored.append(loaded + ttft)  # the restore is part of the wait

    q8 = Engine(n_ctx=4096, n_threads=args.threads, kv_type="q8_0")
    started = time.perf_counter()
    compact = C.build("doc-q8", [DOC], q8)
    build_q8_s = time.perf_counter() - started
    bpt = {
        "f16": cart.manifest["state"]["bytes"] / cart.tokens,
        "q8_0": compact.manifest["state"]["bytes"] / compact.tokens,
    }
    agree = 0
    for question in QUESTIONS:
        C.activate(f16, [cart])
        C.activate(q8, [compact])
        agree += ask(f16, system, question)[0] == ask(q8, system, question)[0]
    q8.close()
    f16.close()

    one = Engine(n_ctx=4096, n_threads=1)
    exact = 0
    checked = QUESTIONS[:3]
    for question in checked:
        one.reset()
        cold_text = ask(one, system, question)[0]
        one.reset()
        C.activate(one, [cart])
        exact += ask(one, system, question)[0] == cold_text
    one.close()

    cold_ms, warm_ms = statistics.median(cold) * 1000, statistics.median(restored) * 1000
    speedup = cold_ms / warm_ms
    print(
        f"document {DOC.name}: {cart.tokens:,} tokens, {args.threads} threads, median of {args.runs} alternating runs"
    )
    print(f"{'':<34}{'value':>14}")
    print(f"{'TTFT cold (document in prompt)':<34}{cold_ms:>11,.0f} ms")
    print(f"{'TTFT from cartridge (incl. load)':<34}{warm_ms:>11,.0f} ms")
    print(f"{'  of which restoring the state':<34}{statistics.median(restore_only) * 1000:>11,.0f} ms")
    print(f"{'speed-up':<34}{speedup:>13,.0f}x")
    print(f"{'build f16 / q8_0':<34}{build_s:>7.1f}s /{build_q8_s:>4.1f}s")
    print(f"{'bytes per token f16':<34}{bpt['f16'] / 1000:>11,.1f} KB")
    print(f"{'bytes per token q8_0':<34}{bpt['q8_0'] / 1000:>11,.1f} KB ({bpt['q8_0'] / bpt['f16']:.2f}x)")
    print(f"{'q8_0 answers equal to f16':<34}{agree:>11} of {len(QUESTIONS)}")
    print(f"{'cartridge answers equal to cold':<34}{exact:>11} of {len(checked)} (1 thread)")
    result = {
        "bench": "cartridge",
        "tokens": cart.tokens,
        "threads": args.threads,
        "runs": args.runs,
        "ttft_cold_ms": cold_ms,
        "ttft_restored_ms": warm_ms,
        "restore_ms": statistics.median(restore_only) * 1000,
        "speedup": speedup,
        "build_s": {"f16": build_s, "q8_0": build_q8_s},
        "bytes_per_token": bpt,
        "q8_0_ratio": bpt["q8_0"] / bpt["f16"],
        "q8_0_agreement": agree / len(QUESTIONS),
        "exact_vs_cold": f"{exact}/{len(checked)}",
        "targets": {"speedup_min": 30, "q8_0_ratio_max": 0.55},
        "pass": speedup >= 30 and bpt["q8_0"] / bpt["f16"] <= 0.55 and exact == len(checked),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
