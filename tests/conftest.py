"""Shared fixtures: one real default model per test session, and a private data dir per test."""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from homefire.config import GenerationSettings

# The suite never touches a model hub: huggingface-hub stays offline unless a test points it at a local fake hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

ROOT = Path(__file__).resolve().parent.parent

# No network beyond this machine, in this process and in every Python process a test starts: connections
# and name lookups outside loopback fail, and each attempt is logged so a test fails even if the code
# under test swallowed the error (tests/netguard/sitecustomize.py).
NETGUARD = ROOT / "tests" / "netguard"
NETGUARD_LOG = Path(tempfile.mkdtemp(prefix="homefire-netguard-")) / "refused.log"
os.environ["HOMEFIRE_NETGUARD"] = "1"
os.environ["HOMEFIRE_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join([str(NETGUARD), *filter(None, [os.environ.get("PYTHONPATH")])])
_spec = importlib.util.spec_from_file_location("homefire_netguard", NETGUARD / "sitecustomize.py")
assert _spec is not None and _spec.loader is not None
netguard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netguard)
netguard.install()


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    """Fails the test if it, or a process it started, tried to reach beyond this machine."""
    yield
    if NETGUARD_LOG.exists():
        tried = NETGUARD_LOG.read_text()
        NETGUARD_LOG.unlink()
        pytest.fail(f"network access outside this machine was attempted:\n{tried}")


@pytest.fixture(autouse=True)
def homefire_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HOMEFIRE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    from homefire.models.store import embedded_model

    return embedded_model().path


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real default model, loaded once for the whole session."""
    os.environ["HOMEFIRE_HOME"] = str(tmp_path_factory.mktemp("engine-home"))
    from homefire.engine import Engine

    eng = Engine(n_ctx=2048, n_threads=2)
    yield eng
    eng.close()


@pytest.fixture
def greedy() -> GenerationSettings:
    return GenerationSettings(temperature=0.0, max_tokens=48, seed=42)


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, HOMEFIRE_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("HF_ENDPOINT", None)
    return env


def homefire_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "homefire", *args]


def write_gguf(path: Path, metadata: dict[str, str | int], tensors: int = 0) -> Path:
    """A minimal, well-formed GGUF v3 file with string/uint32 metadata and no tensor data."""

    def s(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    out = b"GGUF" + struct.pack("<IQQ", 3, tensors, len(metadata))
    for key, value in metadata.items():
        if isinstance(value, int):
            out += s(key) + struct.pack("<II", 4, value)
        else:
            out += s(key) + struct.pack("<I", 8) + s(value)
    path.write_bytes(out)
    return path
