# cmp: `make demo` serves the demo on 127.0.0.1:5000; `make test` runs the whole suite; `make lint` checks the style.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_ENV := CMP_ENV=development

.PHONY: demo test lint install install-test migrate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

migrate: install
	$(DEMO_ENV) $(BIN)/cmp db upgrade

demo: migrate
	$(DEMO_ENV) $(BIN)/cmp demo --base-url http://$(HOST):$(PORT)
	@echo "demo: http://$(HOST):$(PORT)/demo"
	$(DEMO_ENV) $(BIN)/cmp run --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff's settings are in pyproject.toml.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-test
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache build dist *.egg-info
