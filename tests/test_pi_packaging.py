"""The Raspberry Pi packaging's own logic (the full build and its arm64 run are `make pi-deb` / `make pi-smoke`)."""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging/pi"))
import build_deb  # noqa: E402
import cross_llama  # noqa: E402


def test_a_wheel_is_retagged_for_aarch64_with_a_consistent_record(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-linux_x86_64.whl"
    meta = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: py3-none-linux_x86_64\n"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo/__init__.py", "")
        z.writestr("demo-1.0.dist-info/WHEEL", meta)
        z.writestr("demo-1.0.dist-info/RECORD", "demo/__init__.py,,0\ndemo-1.0.dist-info/WHEEL,sha256=x,1\n")
    out = cross_llama.retag(wheel, "manylinux_2_36_aarch64")
    assert out.name == "demo-1.0-py3-none-manylinux_2_36_aarch64.whl"
    with zipfile.ZipFile(out) as z:
        tags = z.read("demo-1.0.dist-info/WHEEL").decode()
        record = z.read("demo-1.0.dist-info/RECORD").decode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(z.read("demo-1.0.dist-info/WHEEL")).digest()).rstrip(b"=")
    assert "Tag: py3-none-manylinux_2_36_aarch64" in tags and "linux_x86_64" not in tags
    assert f"demo-1.0.dist-info/WHEEL,sha256={digest.decode()}," in record


def test_only_aarch64_binaries_pass_the_check(tmp_path: Path) -> None:
    elf = bytearray(64)
    elf[:4] = b"\x7fELF"
    elf[18:20] = (183).to_bytes(2, "little")
    (tmp_path / "arm.so").write_bytes(bytes(elf))
    elf[18:20] = (62).to_bytes(2, "little")  # x86-64
    (tmp_path / "x86.so").write_bytes(bytes(elf))
    assert cross_llama.is_aarch64_elf(tmp_path / "arm.so") and not cross_llama.is_aarch64_elf(tmp_path / "x86.so")


def test_the_cross_build_targets_plain_armv8_for_pi4_and_pi5() -> None:
    args = cross_llama.cmake_args("armv8-a")
    assert "-DGGML_CPU_ARM_ARCH=armv8-a" in args and "-DGGML_NATIVE=OFF" in args
    assert "-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc" in args
    assert "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod" in cross_llama.cmake_args("dotprod")


def test_triplicated_libraries_become_one_file_and_symlinks(tmp_path: Path) -> None:
    for name in ("libllama.so", "libllama.so.0", "libllama.so.0.5.0"):
        (tmp_path / name).write_bytes(b"llama" * 100)
    (tmp_path / "libggml.so.0").write_bytes(b"ggml")
    saved = build_deb.dedupe_libraries(tmp_path)
    assert saved == 1000
    assert not (tmp_path / "libllama.so.0").is_symlink()
    for name in ("libllama.so", "libllama.so.0.5.0"):
        link = tmp_path / name
        assert link.is_symlink() and link.resolve() == (tmp_path / "libllama.so.0").resolve()
        assert link.read_bytes() == b"llama" * 100
    assert not (tmp_path / "libggml.so.0").is_symlink()


def test_trim_drops_tests_caches_and_tooling_but_keeps_the_code(tmp_path: Path) -> None:
    keep = ["numpy/__init__.py", "onnxruntime/capi/lib.so", "homefire/guard/data/head.npz"]
    drop = ["numpy/_core/tests/test_x.py", "pkg/__pycache__/m.cpython-311.pyc", "onnxruntime/tools/t.py", "bin/x"]
    drop += ["pip/__init__.py", "pip-26.3.dist-info/METADATA", "numpy/_core/include/numpy/a.h", "x/stub.pyi"]
    for rel in keep + drop:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    build_deb.trim(tmp_path)
    assert all((tmp_path / rel).exists() for rel in keep)
    assert not any((tmp_path / rel).exists() for rel in drop)


def test_the_vendored_requirements_are_pyprojects_less_llama_plus_the_web_extra() -> None:
    reqs = build_deb.requirements()
    assert not any(r.startswith("llama-cpp-python") for r in reqs)  # our cross-built wheel instead
    assert any(r.startswith("textual-serve") for r in reqs) and any(r.startswith("onnxruntime") for r in reqs)


def test_the_launcher_isolates_the_vendored_packages() -> None:
    launcher = build_deb.LAUNCHER.format(py="3.11", telemetry=build_deb.TELEMETRY_OFF)
    assert launcher.startswith("#!/bin/sh\n")
    assert 'PYTHONPATH=/opt/homefire/lib exec /usr/bin/python3.11 -s -P -m homefire "$@"' in launcher


def test_the_launcher_and_the_unit_switch_telemetry_off() -> None:
    from homefire.privacy_env import TELEMETRY_OFF

    launcher = build_deb.LAUNCHER.format(py="3.11", telemetry=build_deb.TELEMETRY_OFF)
    unit = build_deb.SERVICE
    assert TELEMETRY_OFF["ORT_DISABLE_TELEMETRY"] == "1"
    exported = next(line for line in launcher.splitlines() if line.startswith("export "))
    assert exported.split()[1:] == [f"{k}={v}" for k, v in TELEMETRY_OFF.items()]
    # Before the exec, so the Python it starts has them from its first instruction.
    assert launcher.index("export ") < launcher.index("exec ")
    environment = next(line for line in unit.splitlines() if "ORT_DISABLE_TELEMETRY" in line)
    assert environment.startswith("Environment=") and environment.split("=", 1)[1].split() == exported.split()[1:]


def test_a_wheel_carrying_the_guards_training_recipe_is_found(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "clean.whl", tmp_path / "dirty.whl"
    for path, extra in ((clean, []), (dirty, ["homefire/guard/finetune.py", "training/guard/train.py"])):
        with zipfile.ZipFile(path, "w") as z:
            for name in ["homefire/guard/guard.py", "homefire/guard/data/guard.onnx", *extra]:
                z.writestr(name, "")
    assert build_deb.recipe_files(clean) == []
    assert build_deb.recipe_files(dirty) == ["homefire/guard/finetune.py", "training/guard/train.py"]


def test_homefires_wheel_ships_the_guard_but_not_its_training_recipe(tmp_path: Path) -> None:
    # The same wheel `make pi-deb` vendors (built offline here: setuptools comes from the test extra).
    wheel = build_deb.build_wheel(tmp_path, "--no-build-isolation")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"homefire/guard/guard.py", "homefire/guard/data/guard.onnx", "homefire/guard/data/tokenizer.json"} <= names
    assert {"homefire/guard/stage2.py", "homefire/guard/data/stage2.npz"} <= names  # the second stage too
    assert build_deb.recipe_files(wheel) == []
    assert not any("train" in n or "finetune" in n or "hard_negatives" in n for n in names)
