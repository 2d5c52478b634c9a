"""The GGUF header reader: real files pass, damaged and foreign ones get a clear ModelError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from homefire.errors import ModelError
from homefire.models.gguf import read_gguf

from .conftest import write_gguf


def test_reads_the_default_model(default_model_path: Path) -> None:
    info = read_gguf(default_model_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert "<|im_start|>" in (info.chat_template or "")
    assert info.tensor_count > 100
    assert info.data_end == info.file_size  # every tensor's bytes are accounted for
    assert info.array_lengths["tokenizer.ggml.tokens"] == 49152


def test_truncated_file_is_named_truncated(default_model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    shutil.copyfile(default_model_path, cut)
    with cut.open("r+b") as f:
        f.truncate(default_model_path.stat().st_size - 4096)
    with pytest.raises(ModelError, match="truncated"):
        read_gguf(cut)


def test_file_cut_inside_the_header(default_model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_model_path.read_bytes()[:50_000])
    with pytest.raises(ModelError, match="truncated"):
        read_gguf(cut)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a GGUF"),
        (b"PK\x03\x04 a zip file", "not a GGUF"),
        (b"GGUF\x09\x00\x00\x00" + b"\x00" * 16, "version 9"),
        (b"GGUF\x03\x00\x00\x00" + b"\xff" * 16, "damaged"),
    ],
)
def test_foreign_or_damaged_bytes(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        read_gguf(bad)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model file"):
        read_gguf(tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match="folder"):
        read_gguf(tmp_path)


def test_bit_flips_in_the_header_never_escape_as_other_errors(default_model_path: Path, tmp_path: Path) -> None:
    head = bytearray(default_model_path.read_bytes()[:4096])
    flipped = tmp_path / "flip.gguf"
    for pos in range(4, 400, 7):
        data = bytearray(head)
        data[pos] ^= 0xFF
        flipped.write_bytes(bytes(data))
        with pytest.raises(ModelError):
            read_gguf(flipped)  # a 4 KB prefix can never be whole: each flip must still end in ModelError


def test_minimal_gguf_written_by_hand(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "tiny.gguf", {"general.architecture": "nonesuch", "general.name": "tiny"}))
    assert (info.architecture, info.name, info.tensor_count) == ("nonesuch", "tiny", 0)
