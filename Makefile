# The two commands a newcomer needs are `make demo` and `make test`; both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check format bench clean help-cache

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "broadcaster needs Python 3.11 or newer (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)  ## the main job on the embedded defaults: sandbox, example workspace, the seed's update fanned out
	$(BIN)/broadcaster demo

test: $(STAMP)  ## the whole suite (PostgreSQL tests run when BROADCASTER_TEST_POSTGRES_URL is set)
	$(BIN)/python -m pytest

check: $(STAMP)  ## lint, format and type checks
	$(BIN)/ruff check broadcaster tests bench
	$(BIN)/ruff format --check broadcaster tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix broadcaster tests bench
	$(BIN)/ruff format broadcaster tests bench

# Peers the benchmarks compare with (Apprise's CLI); not needed to run or test broadcaster.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)  ## benchmarks; each prints its figures and a RESULT line
	@set -e; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

help-cache: $(STAMP)  ## after changing a command or its help: the page `broadcaster --help` prints at once
	$(BIN)/python -m broadcaster.cli.root_help

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
