"""Every way the data dir, settings, models or memory can fail to open at start-up is one line naming
the path and what to do, a non-zero exit, and no traceback: a real `homefire` process each time.

Read-only and full file systems are real tmpfs mounts in a private mount namespace (`unshare`); a
permission error as root needs a user namespace, where root's override of file modes does not apply.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import cli_env, homefire_cmd
from .test_cli import assert_one_line_error

ASK = ("ask", "--guard", "off", "hi")


def run(home: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *homefire_cmd(*args)], env=cli_env(home), capture_output=True, text=True, timeout=180
    )


def namespaces_work(*flags: str) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    probe = subprocess.run(["unshare", *flags, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow `unshare {' '.join(flags)}`: {probe.stderr.strip()}")


def on_tmpfs(mountpoint: Path, options: str) -> tuple[str, ...]:
    """A command prefix: run inside a private mount namespace with a tmpfs mounted at `mountpoint`."""
    namespaces_work("--user", "--map-root-user", "--mount")
    script = 'mount -t tmpfs -o "$1" homefire-test "$2" && shift 2 && exec "$@"'
    return ("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", options, str(mountpoint))


def test_data_dir_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    out = run(tmp_path / "file" / "home", *ASK)
    assert_one_line_error(out, 1, "data folder", str(tmp_path / "file" / "home"), "Not a directory", "HOMEFIRE_HOME")


def test_data_dir_is_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("x")
    out = run(tmp_path / "home", *ASK)
    assert_one_line_error(out, 1, "data folder", str(tmp_path / "home"), "a file is in the way")


def test_data_dir_name_too_long(tmp_path: Path) -> None:
    home = tmp_path / ("x" * 300)
    out = run(home, *ASK)
    assert_one_line_error(out, 1, "data folder", "File name too long", "shorter")


def test_data_dir_without_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # As root, file modes are not enforced; in a user namespace without a mapping they are.
    prefix: tuple[str, ...] = ()
    import os

    if os.geteuid() == 0:
        namespaces_work("--user")
        prefix = ("unshare", "--user")
    out = run(locked / "home", *ASK, prefix=prefix)
    assert_one_line_error(out, 1, "data folder", str(locked / "home"), "Permission denied", "chmod")


def test_data_dir_on_a_read_only_file_system(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = run(mnt / "home", *ASK, prefix=on_tmpfs(mnt, "ro"))
    assert_one_line_error(out, 1, "data folder", str(mnt / "home"), "Read-only file system", "writable")


def test_data_dir_on_a_full_disk(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # One inode: the mount's own folder. Nothing more fits.
    out = run(mnt / "home", *ASK, prefix=on_tmpfs(mnt, "size=64k,nr_inodes=1"))
    assert_one_line_error(out, 1, str(mnt / "home"), "No space left on device", "free some space")


def test_models_folder_is_a_file(homefire_home: Path) -> None:
    homefire_home.mkdir(parents=True)
    (homefire_home / "models").write_text("x")
    out = run(homefire_home, "models", "list")
    assert_one_line_error(out, 1, "models folder", str(homefire_home / "models"), "a file is in the way")


def test_settings_file_is_a_folder(homefire_home: Path) -> None:
    (homefire_home / "config.toml").mkdir(parents=True)
    out = run(homefire_home, *ASK)
    assert_one_line_error(out, 2, "settings file", str(homefire_home / "config.toml"))


def test_memory_database_is_a_folder(homefire_home: Path) -> None:
    (homefire_home / "memory.db").mkdir(parents=True)
    out = run(homefire_home, *ASK)
    assert out.returncode != 0
    assert_one_line_error(out, out.returncode, "memory")


def test_memory_on_a_read_only_data_dir(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # The data dir itself exists (the mount) and is 0700, so only writing into it fails.
    out = run(mnt, *ASK, prefix=on_tmpfs(mnt, "ro,mode=0700"))
    assert_one_line_error(out, 1, "memory", str(mnt), "Read-only file system", "--incognito")
