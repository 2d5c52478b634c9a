"""`models pull` for real, against a local server that answers the hub's endpoints with a real GGUF."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from homefire.errors import ChecksumMismatch, DownloadError, ModelError
from homefire.models import store
from homefire.models.pull import pull

from .conftest import cli_env, homefire_cmd
from .fakehub import COMMIT, FakeHub

REPO, FILE = "homefire-test/SmolLM2-GGUF", "smollm2-test-q4_1.gguf"


@pytest.fixture
def hub(default_model_path: Path):  # type: ignore[no-untyped-def]
    with FakeHub() as hub:
        hub.add(REPO, FILE, default_model_path)
        yield hub


def test_pull_installs_a_verified_model(hub: FakeHub, default_model_path: Path, homefire_home: Path) -> None:
    seen: list[tuple[int, int]] = []
    model = pull(REPO, FILE, endpoint=hub.endpoint, progress=lambda done, total: seen.append((done, total)))
    size = default_model_path.stat().st_size
    assert model.name == "smollm2-test-q4_1"
    assert model.path == homefire_home / "models" / "smollm2-test-q4_1.gguf"
    assert model.path.read_bytes() == default_model_path.read_bytes()
    assert stat.S_IMODE(model.path.stat().st_mode) == 0o600
    assert model.revision == COMMIT
    assert seen and seen[-1] == (size, size)  # progress reached the end
    assert not (homefire_home / "models" / ".partial" / model.name).exists()
    manifest = json.loads((homefire_home / "models" / "smollm2-test-q4_1.json").read_text())
    assert manifest["sha256"] == hub.files[(REPO, FILE)].sha256 and manifest["repo"] == REPO
    resolved = store.resolve("smollm2-test-q4_1")
    assert resolved.path == model.path and store.verify(resolved) == model.sha256


def test_interrupted_transfer_resumes(hub: FakeHub, default_model_path: Path) -> None:
    f = hub.files[(REPO, FILE)]
    f.cut_after = 30_000_000
    try:
        model = pull(REPO, FILE, endpoint=hub.endpoint)
    except DownloadError as exc:
        assert "run the same pull again" in str(exc)
        model = pull(REPO, FILE, endpoint=hub.endpoint)
    assert model.path.read_bytes() == default_model_path.read_bytes()
    ranges = [r for r in f.requests if r.startswith("bytes=")]
    assert ranges, f.requests
    assert int(ranges[-1][len("bytes=") :].rstrip("-")) >= 1_000_000  # resumed, not restarted


def test_checksum_mismatch_installs_nothing_and_keeps_the_good_copy(hub: FakeHub, default_model_path: Path) -> None:
    good = pull(REPO, FILE, endpoint=hub.endpoint)
    before = good.path.read_bytes()
    hub.files[(REPO, FILE)].sha256 = "0" * 64
    with pytest.raises(ChecksumMismatch, match="arrived damaged"):
        pull(REPO, FILE, endpoint=hub.endpoint)
    assert good.path.read_bytes() == before
    assert store.resolve(good.name).sha256 == good.sha256


def test_missing_file_is_a_clear_error(hub: FakeHub) -> None:
    with pytest.raises(DownloadError, match="not found on the hub"):
        pull(REPO, "no-such-file.gguf", endpoint=hub.endpoint)
    with pytest.raises(ModelError, match="not a .gguf"):
        pull(REPO, "README.md", endpoint=hub.endpoint)


def test_unreachable_hub_is_a_clear_error() -> None:
    with pytest.raises(DownloadError, match="could not reach"):
        pull(REPO, FILE, endpoint="http://127.0.0.1:9")


def test_cli_pull_list_verify_rm(hub: FakeHub, homefire_home: Path) -> None:
    env = cli_env(homefire_home) | {"HF_ENDPOINT": hub.endpoint}
    run = lambda *a: subprocess.run(homefire_cmd(*a), env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    out = run("models", "pull", REPO, FILE)
    assert out.returncode == 0, out.stderr
    assert "installed and verified" in out.stdout and "network" in out.stderr
    listing = run("models", "list")
    assert "smollm2-test-q4_1" in listing.stdout and "pulled" in listing.stdout
    assert run("models", "verify", "smollm2-test-q4_1").returncode == 0
    # Damage the installed file: verify says so on one line and fails.
    path = homefire_home / "models" / "smollm2-test-q4_1.gguf"
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\x00" * 64)
    bad = run("models", "verify", "smollm2-test-q4_1")
    assert bad.returncode == 1 and "damaged" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert run("models", "rm", "smollm2-test-q4_1").returncode == 0
    assert not path.exists()
    gone = run("models", "info", "smollm2-test-q4_1")
    assert gone.returncode == 1 and "unknown model" in gone.stderr
