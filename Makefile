# Two entry points, each setting up everything it needs on a fresh machine (see README):
#   make example   set up, build the bundled example data, verify the bundled example record on the CPU
#   make test      set up, check the import contracts, run the whole CPU test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pip arguments for PyTorch (unquoted, so options such as --index-url pass through); the default is
# the CPU build that our CI machines install from their local disk.
TORCH_SPEC ?= torch==2.13.0
EXAMPLE ?= submissions/2026-11-24_reference_tiny
# The settings the example record was trained with (its README's Configuration table): verify reruns
# its train_gpt.py with them, as the record's own reproduction command does.
EXAMPLE_ENV := NUM_LAYERS=2 MODEL_DIM=64 NUM_HEADS=4 NUM_KV_HEADS=2 TRAIN_SEQ_LEN=64 TRAIN_BATCH_TOKENS=1024 \
	ITERATIONS=50 WARMUP_STEPS=2 VAL_BATCH_SIZE=8192 VAL_LOSS_EVERY=25 TRAIN_LOG_EVERY=10 \
	MAX_WALLCLOCK_SECONDS=0 WARMDOWN_ITERS=10

.PHONY: setup example test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

example: setup
	$(BIN)/harness data example
	$(BIN)/harness verify $(EXAMPLE) $(addprefix --env ,$(EXAMPLE_ENV))

test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .import_linter_cache
