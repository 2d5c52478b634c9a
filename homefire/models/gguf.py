"""Read and check a GGUF file's header without loading the model.

llama.cpp reports a bad file with a log line and a generic failure (or worse); we read the
header ourselves first so a missing, foreign, truncated or damaged file gets a clear message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ModelError

MAGIC = b"GGUF"
# Metadata arrays longer than this (the tokenizer's vocabulary) are skipped, keeping only their length.
_KEEP_ARRAY = 64

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
# ggml type -> (elements per block, bytes per block); used to find where tensor data must end.
_GGML_TYPES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


@dataclass
class GGUFInfo:
    """What a GGUF header says about the model inside."""

    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    file_size: int
    data_end: int = 0
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def quantization(self) -> str:
        ftype = self.metadata.get("general.file_type")
        return _FILE_TYPES.get(int(ftype), f"type {ftype}") if ftype is not None else "unknown"


def _shown(key: str) -> str:
    """A key name from the file, safe for a one-line message (a damaged length can make it binary junk)."""
    text = key if key.isprintable() and len(key) <= 60 else key[:40].encode("unicode_escape").decode() + "…"
    return repr(text)


class _Reader:
    def __init__(self, f: BinaryIO, size: int, path: Path):
        self.f, self.size, self.path = f, size, path

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelError(f"{self.path} is truncated (its header ends early): download or copy it again")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > self.size:
            raise ModelError(f"{self.path} is damaged (a header string is {n} bytes long): get a fresh copy")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, key: str, lengths: dict[str, int]) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, count = self.unpack("<I"), self.unpack("<Q")
            if count > self.size:
                raise ModelError(f"{self.path} is damaged (array {_shown(key)} claims {count} items): get a fresh copy")
            lengths[key] = count
            if etype in _SCALARS and count > _KEEP_ARRAY:
                self.f.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
                return None
            items = [self.value(etype, key, lengths) for _ in range(count)]
            return items if count <= _KEEP_ARRAY else None
        raise ModelError(f"{self.path} is damaged (unknown metadata type {vtype} for {_shown(key)}): get a fresh copy")


def read_gguf(path: Path | str) -> GGUFInfo:
    """Parse the header and check that the tensor data is all there. Raises ModelError if not."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no model file at {path}: check the path, or see `homefire models list`")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a .gguf model file")
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            if f.read(4) != MAGIC:
                raise ModelError(f"{path} is not a GGUF model file: homefire runs .gguf models (llama.cpp format)")
            r = _Reader(f, size, path)
            version = r.unpack("<I")
            if version not in (2, 3):
                raise ModelError(
                    f"{path} is GGUF version {version}, which this llama.cpp cannot read: use a v2/v3 file"
                )
            tensor_count, kv_count = r.unpack("<Q"), r.unpack("<Q")
            if tensor_count > size or kv_count > size:
                raise ModelError(f"{path} is damaged (impossible header counts): get a fresh copy")
            meta: dict[str, Any] = {}
            lengths: dict[str, int] = {}
            for _ in range(kv_count):
                key = r.string()
                meta[key] = r.value(r.unpack("<I"), key, lengths)
            data_rel_end = 0
            for _ in range(tensor_count):
                r.string()
                n_dims = r.unpack("<I")
                if n_dims > 8:
                    raise ModelError(f"{path} is damaged (a tensor has {n_dims} dimensions): get a fresh copy")
                n_elements = 1
                for _ in range(n_dims):
                    n_elements *= r.unpack("<Q")
                ggml_type, offset = r.unpack("<I"), r.unpack("<Q")
                block = _GGML_TYPES.get(ggml_type)
                if block:
                    data_rel_end = max(data_rel_end, offset + n_elements // block[0] * block[1])
            alignment = int(meta.get("general.alignment", 32) or 32)
            header_end = f.tell()
            data_start = -(-header_end // alignment) * alignment
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    data_end = data_start + data_rel_end if tensor_count else header_end
    info = GGUFInfo(path, version, tensor_count, meta, size, data_end, lengths)
    if info.data_end > size:
        raise ModelError(
            f"{path} is truncated ({size:,} of {info.data_end:,} bytes): "
            "the download or copy did not finish; get it again"
        )
    return info
