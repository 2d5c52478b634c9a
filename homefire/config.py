"""Where homefire keeps things, and the settings a turn runs with.

Everything user-owned lives under one data dir: `$HOMEFIRE_HOME` if set, else
`$XDG_DATA_HOME/homefire` (default `~/.local/share/homefire`). It is created 0700.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def data_dir() -> Path:
    """The data dir, created 0700 if missing."""
    home = os.environ.get("HOMEFIRE_HOME")
    if home:
        path = Path(home).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "homefire"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A data dir made earlier, by hand or with a loose umask, is tightened: it holds the user's chats.
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o700)
    return path


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def offline_hub() -> None:
    """Keep huggingface-hub from reaching the network or phoning home unless we pull."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")


@dataclass
class GenerationSettings:
    """How an answer is sampled. Defaults suit small models: greedy loops without a repeat penalty.

    temperature None means "the model's default": greedy (0) for models under a billion
    parameters, whose sampled first tokens too often wander off (the 135M default answers
    "What is the capital of France?" in broken French at 0.3 with some seeds), 0.7 for larger.
    """

    max_tokens: int = 512
    temperature: float | None = None
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    seed: int | None = None


DEFAULT_SYSTEM_PROMPT = (
    "You are homefire, a helpful assistant running privately on the user's own device. Answer clearly and briefly."
)
