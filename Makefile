# crossmodal — the two commands of the README:
#   make repro   install, make the input cohort, `dvc repro`, build the book
#   make test    install if needed, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Offline settings the project applies itself (README, "The two commands").
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install data repro book test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/crossmodal data

repro: data
	$(BIN)/dvc repro
	$(MAKE) book

# The landing page (results at a glance) and "Reproduce this book" are executed here, at
# build time, from what the stages wrote; every other page comes executed from its stage.
book: $(STAMP)
	$(BIN)/crossmodal book

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf book/_build
