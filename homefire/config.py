"""Where homefire keeps things, and the settings a turn runs with.

Everything user-owned lives under one data dir: `$HOMEFIRE_HOME` if set, else
`$XDG_DATA_HOME/homefire` (default `~/.local/share/homefire`). It is created 0700.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, storage_error


def data_dir() -> Path:
    """The data dir, created 0700 if missing. Any way it cannot be made or used is one StorageError line."""
    home = os.environ.get("HOMEFIRE_HOME")
    if home:
        path = Path(home).expanduser()
        hint = "it comes from $HOMEFIRE_HOME"
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "homefire"
        hint = "or set HOMEFIRE_HOME to another folder"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A data dir made earlier, by hand or with a loose umask, is tightened: it holds the user's chats.
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            path.chmod(0o700)
    except OSError as exc:
        raise storage_error(exc, "the data folder", path, hint) from None
    return path


def models_dir() -> Path:
    path = data_dir() / "models"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, "the models folder", path) from None
    return path


def offline_hub() -> None:
    """Keep huggingface-hub from reaching the network unless we pull (its telemetry is forced off for
    every command by privacy_env, when the package is imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
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


THEMES = ("homefire-dark", "homefire-light")
# The guard levels, spelled once: the guard's calibrated threshold sets (guard.STRICTNESS) and "off".
GUARD_CHOICES = ("relaxed", "normal", "strict", "off")


@dataclass
class UserConfig:
    """What the user chose in the settings screen, kept in `<data dir>/config.toml` (0600).

    None means "not chosen": the built-in default applies (greedy for small models, all cores, ...).
    """

    model: str | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float | None = None
    n_ctx: int = 4096
    threads: int | None = None
    guard: str = "normal"
    theme: str = "homefire-dark"
    sidebar: bool = True

    def changed(self, **values: Any) -> UserConfig:
        """A copy with these settings, each checked: a bad value is a ConfigError saying what is allowed."""
        out = UserConfig(**asdict(self))
        for key, value in values.items():
            setattr(out, key, check_setting(key, value))
        return out


def check_setting(key: str, value: Any) -> Any:
    """`value` if it is valid for `key`, else a ConfigError that says what is allowed."""
    if key == "model":
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError("model must be a model name from `homefire models list` or a path to a .gguf file")
        return value.strip() if value else None
    if key == "system_prompt":
        if not isinstance(value, str):
            raise ConfigError("system_prompt must be text")
        return value.strip()
    if key == "temperature":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise ConfigError(f"temperature must be a number from 0 to 2, or empty for the default (got {value!r})")
        return float(value)
    if key == "n_ctx":
        if isinstance(value, bool) or not isinstance(value, int) or not 256 <= value <= 131072:
            raise ConfigError(f"context size must be a whole number of tokens from 256 to 131072 (got {value!r})")
        return value
    if key == "threads":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
            raise ConfigError(f"threads must be a whole number from 1 to 256, or empty for all cores (got {value!r})")
        return value
    if key == "guard":
        if value not in GUARD_CHOICES:
            raise ConfigError(f"guard must be one of {', '.join(GUARD_CHOICES)} (got {value!r})")
        return value
    if key == "theme":
        if value not in THEMES:
            raise ConfigError(f"theme must be one of {', '.join(THEMES)} (got {value!r})")
        return value
    if key == "sidebar":
        if not isinstance(value, bool):
            raise ConfigError(f"sidebar must be true or false (got {value!r})")
        return value
    raise ConfigError(f"unknown setting '{key}'")


def config_path() -> Path:
    return data_dir() / "config.toml"


def load_config(path: Path | None = None) -> UserConfig:
    """The saved settings, or the defaults if none were saved. A damaged file is a clear error, never rewritten."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return UserConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from None
    try:
        values = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the settings file {path} is damaged ({exc}): fix or delete it") from None
    known = {f.name for f in fields(UserConfig)}
    try:
        return UserConfig().changed(**{k: v for k, v in values.items() if k in known})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}: fix it, or delete it to start afresh") from None


def save_config(cfg: UserConfig, path: Path | None = None) -> Path:
    """Write the settings atomically, 0600: a crash leaves the old file or the new one, never half of one."""
    path = path or config_path()
    lines = ["# homefire settings: written by the settings screen (Ctrl+S there). Unset = built-in default."]
    for key, value in asdict(cfg).items():
        if value is None:
            continue
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()
        lines.append(f"{key} = {text}")
    try:
        write_private(path, "\n".join(lines) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot save the settings to {path}: {exc.strerror}") from None
    return path


def write_private(path: Path, text: str) -> None:
    """Write a small file atomically, readable only by the user: a crash leaves the old file or the new one.

    The temporary file is unique (mkstemp, created 0600), so two processes writing the same file at once
    never rename each other's half-written copy away."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
