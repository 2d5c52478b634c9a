"""The llama-cpp-python build flags: never AMX, only what the CPU has, native on ARM."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .conftest import ROOT


def load_installer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("install_llama", ROOT / "packaging" / "install_llama.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_llama"] = module
    spec.loader.exec_module(module)
    return module


def test_x86_with_avx512_and_amx_gets_avx512_but_never_amx() -> None:
    m = load_installer()
    flags = m.cpu_flags("processor: 0\nflags\t\t: fpu sse avx avx2 fma f16c avx512f avx512_vnni amx_tile amx_int8\n")
    args = m.cmake_args("x86_64", flags)
    assert "-DGGML_NATIVE=OFF" in args
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX2=ON" in args and "-DGGML_AVX512_VNNI=ON" in args
    assert not any("AMX" in a and a.endswith("=ON") for a in args)


def test_x86_without_avx512_does_not_get_it() -> None:
    m = load_installer()
    args = m.cmake_args("x86_64", m.cpu_flags("flags : sse avx avx2 fma f16c\n"))
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX2=ON" in args


def test_arm_builds_native() -> None:
    m = load_installer()
    assert m.cmake_args("aarch64", set()) == ["-DGGML_NATIVE=ON"]


def test_installed_llama_cpp_is_the_pinned_version() -> None:
    import llama_cpp

    m = load_installer()
    assert llama_cpp.__version__ == m.VERSION
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"llama-cpp-python=={m.VERSION}"' in pyproject
    assert Path(llama_cpp.__file__).exists()
