"""The data dir: one private folder for everything the user owns."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from homefire import config


def test_data_dir_is_created_private(homefire_home: Path) -> None:
    assert config.data_dir() == homefire_home
    assert stat.S_IMODE(homefire_home.stat().st_mode) == 0o700


def test_an_existing_open_data_dir_is_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    monkeypatch.setenv("HOMEFIRE_HOME", str(loose))
    config.data_dir()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_xdg_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMEFIRE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.data_dir() == tmp_path / "xdg" / "homefire"
