# mlpipe: `make test` and `make demo` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck contracts pytest demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --progress-bar off -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check mlpipe tests benchmarks examples pipelines notebooks

typecheck: install
	$(BIN)/mypy mlpipe/core mlpipe/errors.py

contracts: install
	$(BIN)/lint-imports

pytest: install
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/pytest -q

test: lint typecheck contracts pytest

demo: install
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlpipe demo

bench: install
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/persisted_path.py
	$(BIN)/python benchmarks/scheduler_latency.py

clean:
	rm -rf $(VENV) .mlpipe .pytest_cache .mypy_cache .ruff_cache
