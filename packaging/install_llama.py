"""Install the pinned llama-cpp-python, built with CPU flags that work on this machine.

pip caches wheels by name and version, not by the CMAKE_ARGS they were built with, so a
wheel built elsewhere (or with AMX, which crashes these VMs at the first decode) could be
reused silently. We build the wheel ourselves with --no-cache-dir into a folder keyed by
the exact build flags, and install only from that folder.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

VERSION = "0.3.36"

# x86 instruction sets llama.cpp can use, by the /proc/cpuinfo flag that says the CPU has it.
# AMX is left out on purpose: some VMs report it but trap when it runs.
X86_FLAGS = {
    "avx": "GGML_AVX",
    "avx2": "GGML_AVX2",
    "fma": "GGML_FMA",
    "f16c": "GGML_F16C",
    "bmi2": "GGML_BMI2",
    "avx_vnni": "GGML_AVX_VNNI",
    "avx512f": "GGML_AVX512",
    "avx512vbmi": "GGML_AVX512_VBMI",
    "avx512_vnni": "GGML_AVX512_VNNI",
    "avx512_bf16": "GGML_AVX512_BF16",
}


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(machine: str, flags: set[str]) -> list[str]:
    """CMake options for this CPU: explicit ISA flags on x86, a native build elsewhere."""
    if machine not in ("x86_64", "AMD64", "i686"):
        return ["-DGGML_NATIVE=ON"]
    args = ["-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
    for flag, option in X86_FLAGS.items():
        args.append(f"-D{option}={'ON' if flag in flags else 'OFF'}")
    return args


def main() -> int:
    # --wheel: build (or reuse) the wheel and print its path, installing nothing; for
    # `pipx install --preinstall` / `uv tool install --with` (README: Install, desktop).
    wheel_only = "--wheel" in sys.argv[1:]
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    args = cmake_args(platform.machine(), cpu_flags(cpuinfo))
    extra = os.environ.get("HOMEFIRE_CMAKE_ARGS", "")
    cmake = " ".join(args + ([extra] if extra else []))
    key = hashlib.sha256(f"{VERSION}|{sys.version_info[:2]}|{platform.machine()}|{cmake}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homefire" / "wheels" / key
    wheels = list(cache.glob(f"llama_cpp_python-{VERSION}-*.whl"))
    if not wheels:
        print(
            f"building llama-cpp-python {VERSION} (about 4 minutes on 2 cores) with: {cmake}",
            flush=True,
            file=sys.stderr if wheel_only else sys.stdout,
        )
        cache.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CMAKE_ARGS=cmake, FORCE_CMAKE="1")
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-cache-dir",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                "-w",
                str(cache),
                f"llama-cpp-python=={VERSION}",
            ],
            check=True,
            env=env,
            stdout=sys.stderr if wheel_only else None,
        )
        (cache / "CMAKE_ARGS").write_text(cmake + "\n")
    elif not wheel_only:
        print(f"using llama-cpp-python wheel built with: {cmake}", flush=True)
    if wheel_only:
        print(next(cache.glob(f"llama_cpp_python-{VERSION}-*.whl")))
        return 0
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--force-reinstall",
            "--no-deps",
            "--find-links",
            str(cache),
            "--no-index",
            f"llama-cpp-python=={VERSION}",
        ],
        check=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
