# Set-up and everyday commands. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)  ## create/update .venv with vdlib and its pinned dependencies

demo: install  ## run the whole pipeline on the built-in demo video
	dvc repro

test: install  ## ruff, then the whole test suite (slow end-to-end tests included)
	$(BIN)/ruff check vdlib stages tests benchmarks
	YOLO_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install  ## skip the tests marked slow
	YOLO_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check vdlib stages tests benchmarks
	$(BIN)/ruff format --check vdlib stages tests benchmarks

clean:  ## remove the pipeline's outputs and resume states (not the venv)
	rm -rf data/raw data/frames data/labels.parquet reports/labels/preview.gif models/base models/upsampler_* .vdlib
