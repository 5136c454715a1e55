# koe-server: the two commands that matter are `make run` and `make test`.
# Everything installs itself into .venv on first use; models go to $(KOE_CACHE_DIR).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KOE_CACHE_DIR ?= $(HOME)/.cache/koe
# CPU wheel of torch that pip finds locally; an unpinned torch pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
OPENJTALK := pyopenjtalk-plus==0.4.1.post10
PROFILE ?= embedded

.PHONY: help install run test lint typecheck pytest bench soak clean

help:
	@echo "make run      start the services on the embedded models (Ctrl-C stops them)"
	@echo "make run PROFILE=production   the production models on a GPU (downloaded on first start)"
	@echo "make test     install everything, then lint, type-check and run the test suite"
	@echo "make bench    measure latency and real-time factors on this machine"
	@echo "make soak     many sessions talking for minutes: no lost reply, no growth (SOAK_ARGS)"
	@echo "make clean    remove the virtualenv (the model cache stays in $(KOE_CACHE_DIR))"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml scripts/install-system-deps.sh
	$(BIN)/pip install --progress-bar off "$(TORCH)"
	$(BIN)/pip install --progress-bar off -e ".[all,dev]" "$(TORCH)"
	@# style-bert-vits2 pulls pyopenjtalk, which ships the same module as pyopenjtalk-plus:
	@# the plus package (bundled dictionary, no download) must be installed last to own it.
	$(BIN)/pip install --progress-bar off --force-reinstall --no-deps "$(OPENJTALK)"
	touch $@

install: $(STAMP)

run: install
	$(BIN)/python -m services.launcher --profile $(PROFILE) $(SERVICES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	scripts/install-system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	scripts/install-system-deps.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

soak: install
	$(BIN)/python -m tests.reliability.soak $(or $(SOAK_ARGS),--sessions 16 --minutes 10)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
