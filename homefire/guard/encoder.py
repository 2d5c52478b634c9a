"""The guard's model: a fine-tuned all-MiniLM-L6-v2 classifier in int8 ONNX, chunked so any length is seen whole.

The model and the tokenizer ship in `homefire/guard/data/` (see NOTICE there). Text is cut into
chunks by homefire.encoders (overlapping windows plus short sentence units), the tokenizing and
chunking it shares with memory search's sentence encoder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import (
    ALONE,
    DIM,
    MAX_CHUNKS,
    WINDOW,
    chunk_ids,
    chunk_parts,
    length_groups,
    load_tokenizer,
    ort_session,
    padded,
)
from ..errors import GuardError

__all__ = ["ALONE", "MAX_CHUNKS", "WINDOW", "Model", "chunk_parts", "default_model_path"]

JAILBREAK = 2  # column of P(jailbreak) in the model's output (guard.LABELS: benign, harmful, jailbreak)


def default_model_path() -> Path:
    """The guard's ONNX file: $HOMEFIRE_GUARD_MODEL if set, else the one shipped in data/."""
    override = os.environ.get("HOMEFIRE_GUARD_MODEL")
    if override:
        return Path(override).expanduser()
    return Path(str(resources.files("homefire.guard") / "data" / "guard.onnx"))


class Model:
    """The fine-tuned classifier: chunks of token ids -> per-chunk label probabilities and embeddings.

    runtime "auto" uses onnxruntime when it can be imported and the pure-numpy runner
    (numpy_onnx.py: same verdicts, several times slower) where it cannot, as on some phones;
    "onnxruntime" or "numpy" force one. $HOMEFIRE_GUARD_RUNTIME sets the default.
    """

    def __init__(self, model_path: Path | None = None, threads: int = 1, runtime: str | None = None) -> None:
        runtime = runtime or os.environ.get("HOMEFIRE_GUARD_RUNTIME", "auto")
        if runtime not in ("auto", "onnxruntime", "numpy"):
            raise GuardError(f"unknown guard runtime {runtime!r}: use auto, onnxruntime or numpy")
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise GuardError(f"the guard's model file is missing: {path} (reinstall homefire or `make guard-model`)")
        self.tokenizer = load_tokenizer(error=GuardError, owner="the guard")
        self.model_path = path
        self.session: Any
        ort: Any = None
        if runtime != "numpy":
            try:
                import onnxruntime

                ort = onnxruntime
            except ImportError:
                if runtime == "onnxruntime":
                    raise GuardError(
                        "the guard needs onnxruntime, which is not installed or not available on this platform: "
                        "run `pip install onnxruntime`, or use HOMEFIRE_GUARD_RUNTIME=numpy (slower)"
                    ) from None
        if ort is None:
            from .numpy_onnx import NumpyOnnx

            self.runtime = "numpy"
            self.session = NumpyOnnx(path)
        else:
            self.runtime = "onnxruntime"
            self.session = ort_session(ort, path, threads, GuardError, "the guard")
            outputs = {o.name for o in self.session.get_outputs()}
            if not {"logits", "embedding"} <= outputs:
                raise GuardError(f"the guard's model file is not a homefire guard model: {path}")

    def chunks(self, text: str) -> list[list[int]]:
        return chunk_ids(self.tokenizer, text)

    def score(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-chunk probabilities and embeddings of a (normalised) text: windows first, then the
        sentence units, whose P(jailbreak) is counted as benign (a unit is a sentence out of context)."""
        windows, units = chunk_parts(self.tokenizer, text)
        probs, embs = self.run(windows + units)
        if units:
            rows = slice(len(windows), None)
            probs[rows, 0] += probs[rows, JAILBREAK]
            probs[rows, JAILBREAK] = 0.0
        return probs, embs

    def run(self, chunks: list[list[int]], batch_tokens: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (n, labels) and unit embeddings (n, DIM) of pre-tokenised chunks."""
        probs = np.empty((len(chunks), 3), dtype=np.float32)
        embs = np.empty((len(chunks), DIM), dtype=np.float32)
        for idx in length_groups(chunks, batch_tokens):
            ids, mask = padded(chunks, idx)
            logits, emb = self.session.run(["logits", "embedding"], {"input_ids": ids, "attention_mask": mask})
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            probs[idx] = e / e.sum(axis=1, keepdims=True)
            embs[idx] = emb
        return probs, embs
