"""Cross-compile the pinned llama-cpp-python for 64-bit Raspberry Pi OS (aarch64) on an x86 machine.

No emulation: gcc-aarch64-linux-gnu builds llama.cpp for plain armv8-a (runs on a Pi 4's
Cortex-A72 and a Pi 5's A76), optionally armv8.2-a+dotprod (Pi 5 only). The wheel is cached
like install_llama.py caches the native one: in a folder keyed by version and exact flags,
since pip would reuse any wheel of the same name and version whatever it was built with.
llama-cpp-python loads libllama through ctypes (a py3-none wheel), so one wheel serves
every Python; pip tags it for the build machine, so we retag it for aarch64.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from install_llama import VERSION  # noqa: E402

PLATFORM_TAG = "manylinux_2_36_aarch64"  # bookworm's glibc; trixie (2.41) accepts it too
ARCHES = {"armv8-a": "armv8-a", "dotprod": "armv8.2-a+dotprod"}
CC, CXX = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++"


def cmake_args(arch: str) -> list[str]:
    return [
        "-DCMAKE_SYSTEM_NAME=Linux",
        "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
        f"-DCMAKE_C_COMPILER={CC}",
        f"-DCMAKE_CXX_COMPILER={CXX}",
        "-DGGML_NATIVE=OFF",
        f"-DGGML_CPU_ARM_ARCH={ARCHES[arch]}",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
    ]


def is_aarch64_elf(path: Path) -> bool:
    head = path.read_bytes()[:20]
    return head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64


def retag(wheel: Path, platform_tag: str) -> Path:
    """Rewrite the wheel's platform tag (WHEEL file, its RECORD line, the file name)."""
    name, ver, py, abi, _ = wheel.stem.split("-")
    out = wheel.with_name(f"{name}-{ver}-{py}-{abi}-{platform_tag}.whl")
    with zipfile.ZipFile(wheel) as src:
        items = {i.filename: src.read(i.filename) for i in src.infolist()}
    wheel_file = next(n for n in items if n.endswith(".dist-info/WHEEL"))
    lines = [ln for ln in items[wheel_file].decode().splitlines() if not ln.startswith("Tag:")]
    items[wheel_file] = ("\n".join(lines) + f"\nTag: {py}-{abi}-{platform_tag}\n").encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(items[wheel_file]).digest()).rstrip(b"=").decode()
    record = next(n for n in items if n.endswith(".dist-info/RECORD"))
    items[record] = "".join(
        f"{wheel_file},sha256={digest},{len(items[wheel_file])}\n" if ln.startswith(wheel_file + ",") else ln + "\n"
        for ln in items[record].decode().splitlines()
    ).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for n, data in items.items():
            dst.writestr(n, data)
    return out


def build(arch: str, cache_root: Path) -> Path:
    """The cached aarch64 wheel for this arch, building it first if needed."""
    cmake = " ".join(cmake_args(arch))
    key = hashlib.sha256(f"{VERSION}|aarch64|{cmake}".encode()).hexdigest()[:16]
    cache = cache_root / key
    found = list(cache.glob(f"llama_cpp_python-{VERSION}-*-{PLATFORM_TAG}.whl"))
    if found:
        print(f"using cached aarch64 llama-cpp-python wheel ({arch}): {found[0]}", flush=True)
        return found[0]
    for tool in (CC, CXX):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu")
    print(f"cross-compiling llama-cpp-python {VERSION} for aarch64 {arch} (several minutes): {cmake}", flush=True)
    scratch = cache / "build"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = dict(os.environ, CMAKE_ARGS=cmake, FORCE_CMAKE="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--no-binary", "llama-cpp-python"]
        + ["-w", str(scratch), f"llama-cpp-python=={VERSION}"],
        check=True,
        env=env,
    )
    (built,) = scratch.glob("llama_cpp_python-*.whl")
    with zipfile.ZipFile(built) as z:
        libs = [n for n in z.namelist() if n.endswith("libllama.so")]
        z.extract(libs[0], scratch / "check")
    if not is_aarch64_elf(scratch / "check" / libs[0]):
        raise SystemExit(f"{libs[0]} in {built.name} is not an aarch64 binary: the cross-compiler was not used")
    wheel = retag(built, PLATFORM_TAG)
    final = cache / wheel.name
    wheel.replace(final)
    (cache / "CMAKE_ARGS").write_text(cmake + "\n")
    shutil.rmtree(scratch)
    return final


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homefire" / "wheels"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHES), default="armv8-a")
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()
    print(build(args.arch, args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
