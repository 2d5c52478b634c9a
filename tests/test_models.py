"""Resolving, verifying and listing models, all offline."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from homefire.errors import ChecksumMismatch, ModelError
from homefire.models import catalogue, store


def test_default_model_resolves_offline_and_verifies(homefire_home: Path) -> None:
    model = store.resolve(None)
    assert model.name == catalogue.DEFAULT_MODEL and model.source == "embedded"
    assert model.path.name == catalogue.DEFAULT_FILENAME
    assert store.verify(model, force=True) == catalogue.DEFAULT_SHA256
    cache = homefire_home / "models" / ".verified.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert store.resolve("default").path == model.path == store.resolve("smollm2-135m").path


def test_local_path_resolves(default_model_path: Path) -> None:
    model = store.resolve(str(default_model_path))
    assert model.source == "local" and model.path == default_model_path.resolve()


def test_unknown_and_not_downloaded_names() -> None:
    with pytest.raises(ModelError, match="unknown model 'nonesuch'.*smollm2-135m"):
        store.resolve("nonesuch")
    with pytest.raises(ModelError, match="models pull qwen2.5-0.5b"):
        store.resolve("qwen2.5-0.5b")
    with pytest.raises(ModelError, match="no model file"):
        store.resolve("/no/such/model.gguf")


def _install_copy(default_model_path: Path, home: Path, sha256: str) -> store.Model:
    path = home / "models" / "copy.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_model_path, path)
    model = store.Model("copy", path, "pulled", sha256, "someone/repo", "copy.gguf", "main")
    store.save_pulled(model)
    return model


def test_verify_catches_a_changed_file(default_model_path: Path, homefire_home: Path) -> None:
    model = _install_copy(default_model_path, homefire_home, catalogue.DEFAULT_SHA256)
    assert store.verify(model) == catalogue.DEFAULT_SHA256
    with model.path.open("r+b") as f:  # same size, different bytes: the stat cache must not hide it
        f.seek(10_000_000)
        f.write(b"\xff" * 16)
    with pytest.raises(ChecksumMismatch, match="damaged.*pull it again"):
        store.verify(model)


def test_installed_lists_default_first_and_rm_removes(default_model_path: Path, homefire_home: Path) -> None:
    _install_copy(default_model_path, homefire_home, catalogue.DEFAULT_SHA256)
    names = [m.name for m in store.installed()]
    assert names == [catalogue.DEFAULT_MODEL, "copy"]
    removed = store.remove("copy")
    assert not removed.path.exists()
    assert [m.name for m in store.installed()] == [catalogue.DEFAULT_MODEL]
    with pytest.raises(ModelError, match="cannot be removed"):
        store.remove("default")
    with pytest.raises(ModelError, match="no downloaded model"):
        store.remove("copy")


def test_catalogue_entries_are_complete() -> None:
    assert len(catalogue.CATALOGUE) >= 4
    for entry in catalogue.CATALOGUE:
        assert entry.filename.endswith(".gguf") and "/" in entry.repo
        assert entry.size_gb > 0 and entry.min_ram_gb >= 1 and entry.licence
