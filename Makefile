# Set-up and the two everyday jobs. Every target installs what it needs.
#   make classify   install the toolkit and classify examples/ with the default model
#   make test       install everything (Label Studio, PostgreSQL and Chromium included), run all
#                   tests (a skip is a failure here: everything they need was just installed) and
#                   write the shipped model's report on the real held-out set to report/heldout
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: classify test install install-test benchmark

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

classify: install
	$(BIN)/annotate classify examples/

test: install-test
	bash .ci/install-label-studio
	bash .ci/install-postgresql
	bash .ci/install-chromium
	ANNOTATE_REQUIRE_INTEGRATION=1 $(BIN)/python -m pytest -p no:cacheprovider -rs --durations=15
	$(BIN)/annotate evaluate --force --test labels/heldout/real-v3.jsonl --labels labels/real-v3.jsonl -o report/heldout

benchmark: install-test
	$(BIN)/python benchmarks/bench_memory.py --check
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_classify.py
	$(BIN)/python benchmarks/bench_segment.py --quiet
