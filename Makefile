# Two entry points, each setting up everything it needs on a fresh machine (see README):
#   make example   set up, build the bundled example data, check the bundled example submission
#   make test      set up, check the import contracts, run the whole CPU test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip arguments for PyTorch (unquoted, so options such as --index-url pass through); the default is
# the CPU build that our CI machines install from their local disk.
TORCH_SPEC ?= torch==2.13.0
EXAMPLE ?= submissions/2026-11-24_reference_tiny

.PHONY: setup example test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

example: setup
	$(BIN)/harness data example
	$(BIN)/harness check $(EXAMPLE)

test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .import_linter_cache
