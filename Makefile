# Two entry points for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[demo]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/sigmab demo

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but the tests marked slow (see README).
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
