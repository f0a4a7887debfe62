# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast bench clean

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

bench: install
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_feast.py
	$(BIN)/python benchmarks/bench_ctr.py

clean:
	rm -rf artifacts
