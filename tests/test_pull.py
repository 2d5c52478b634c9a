"""`models pull` for real, against a local server that answers the hub's endpoints with a real GGUF."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
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
    # hf-xet's chunk cache pointed into the data dir during the transfer (not ~/.cache), and removed after.
    assert hub.xet_cache_during_get and all(
        c is not None and Path(c).is_relative_to(homefire_home) for c in hub.xet_cache_during_get
    )
    assert "HF_XET_CACHE" not in os.environ and not (homefire_home / "models" / ".partial" / ".xet-cache").exists()
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


def test_a_hub_that_publishes_no_sha256_is_refused(hub: FakeHub, homefire_home: Path) -> None:
    hub.files[(REPO, FILE)].publish_sha256 = False  # as the hub does for a file kept in git, not LFS
    with pytest.raises(DownloadError, match="gives no sha256.*cannot be verified: not installed"):
        pull(REPO, FILE, endpoint=hub.endpoint)
    assert not (homefire_home / "models" / "smollm2-test-q4_1.gguf").exists()
    assert [r for r in hub.files[(REPO, FILE)].requests if r != "HEAD"] == []  # refused before downloading


def test_a_server_error_is_one_clear_line(hub: FakeHub, homefire_home: Path) -> None:
    hub.files[(REPO, FILE)].error = 503
    with pytest.raises(DownloadError) as err:
        pull(REPO, FILE, endpoint=hub.endpoint)
    assert str(err.value) == f"download of {REPO}/{FILE} failed (HTTP 503): try again later"
    assert not (homefire_home / "models" / "smollm2-test-q4_1.gguf").exists()


def test_a_revision_is_fetched_and_recorded(hub: FakeHub, default_model_path: Path, homefire_home: Path) -> None:
    tagged = "fedcba9876543210fedcba9876543210fedcba98"
    served = hub.files[(REPO, FILE)]
    served.revisions["v1.0"] = tagged
    model = pull(REPO, FILE, revision="v1.0", endpoint=hub.endpoint)
    assert model.revision == tagged and "v1.0" in served.asked and "main" not in served.asked
    manifest = json.loads((homefire_home / "models" / "smollm2-test-q4_1.json").read_text())
    assert manifest["revision"] == tagged
    with pytest.raises(DownloadError, match=r"@no-such-tag was not found on the hub.*revision"):
        pull(REPO, FILE, revision="no-such-tag", endpoint=hub.endpoint)
    # From the command line too.
    env = cli_env(homefire_home) | {"HF_ENDPOINT": hub.endpoint}
    out = subprocess.run(
        homefire_cmd("models", "pull", REPO, FILE, "--revision", "nope"), env=env, capture_output=True, text=True
    )
    assert out.returncode == 1 and out.stderr.splitlines()[-1].startswith("homefire: ") and "@nope" in out.stderr
    assert served.asked[-1] == "nope"


def test_a_catalogue_name_pulls_its_repo_and_file(default_model_path: Path, homefire_home: Path) -> None:
    from homefire.models.catalogue import find

    entry = find("qwen2.5-0.5b")
    assert entry is not None
    with FakeHub() as hub:
        served = hub.add(entry.repo, entry.filename, default_model_path)  # a stand-in file under the real names
        env = cli_env(homefire_home) | {"HF_ENDPOINT": hub.endpoint}
        out = subprocess.run(homefire_cmd("models", "pull", "qwen2.5-0.5b"), env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert served.requests and "qwen2.5-0.5b: installed and verified" in out.stdout
    model = store.resolve("qwen2.5-0.5b")
    assert model.repo == entry.repo and model.filename == entry.filename and model.source == "pulled"
    unknown = subprocess.run(homefire_cmd("models", "pull", "qwen9-7b"), env=env, capture_output=True, text=True)
    assert unknown.returncode == 1 and "not in the catalogue" in unknown.stderr
    assert unknown.stderr.count("\n") == 1  # refused before saying it would use the network


needs_mount = pytest.mark.skipif(
    not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0,
    reason="needs unshare -m (root) for a private mount",
)


@needs_mount
def test_not_enough_disk_is_said_before_downloading(hub: FakeHub, homefire_home: Path) -> None:
    # A real 4 MB filesystem as the data dir, in a private mount namespace: the 98 MB model cannot fit.
    homefire_home.mkdir(parents=True, exist_ok=True)
    pull_cmd = shlex.join(homefire_cmd("models", "pull", REPO, FILE))
    script = f"mount -t tmpfs -o size=4m,mode=0700 tmpfs {homefire_home} && exec {pull_cmd}"
    env = cli_env(homefire_home) | {"HF_ENDPOINT": hub.endpoint}
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    said = [line for line in out.stderr.splitlines() if line.startswith("homefire:")]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.fullmatch(r"homefire: .* needs 0\.10 GB but only 0\.00 GB is free in .*/models", said[-1]), said
    assert [r for r in hub.files[(REPO, FILE)].requests if r != "HEAD"] == []  # nothing was downloaded
