# mlpipe: `make test` and `make demo` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck contracts pytest demo demo-large bench bench-quick bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --progress-bar off -e ".[dev]"
	touch $(STAMP)

# The browser tests drive Debian's headless Chromium through its chromedriver (apt-get, through
# sudo unless root); nothing downloads a browser or a driver.
BROWSER_PKGS := /usr/bin/chromium /usr/bin/chromedriver
$(BROWSER_PKGS):
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium chromium-driver; \
	else sudo apt-get install -y chromium chromium-driver; fi

install: $(STAMP) $(BROWSER_PKGS)

lint: install
	$(BIN)/ruff check mlpipe tests benchmarks examples pipelines notebooks

typecheck: install
	$(BIN)/mypy mlpipe/core mlpipe/errors mlpipe/masking.py

contracts: install
	$(BIN)/lint-imports --no-cache

pytest: install
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/pytest -q

test: lint typecheck contracts pytest

demo: install
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlpipe demo

# The same pipeline on Fashion-MNIST (70,000 real 28x28 photos): Debian's package (apt-get,
# through sudo unless root), written as train/ val/ test/ class folders into the demo bucket.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
demo-large: install
	@test -f $(FASHION_MNIST) || { if [ "$$(id -u)" = 0 ]; then \
		apt-get install -y dataset-fashion-mnist; \
		else sudo apt-get install -y dataset-fashion-mnist; fi; }
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlpipe demo --dataset fashion-mnist

# Every benchmark in benchmarks/, 3 runs each -> benchmarks/RESULTS.md (peers included once
# `make bench-peers` has installed them).
bench: install bench-peers
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python benchmarks/run_all.py

bench-quick: install
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python benchmarks/run_all.py --quick --repeat 1 \
		--output $(or $(TMPDIR),/tmp)/mlpipe-bench-quick.md

# Airflow 3, Prefect 3, Dagster, Luigi and awscli, pinned, each in its own venv under .peers/
bench-peers:
	bash benchmarks/peers/setup.sh

clean:
	rm -rf $(VENV) .mlpipe .pytest_cache .mypy_cache .ruff_cache
