# The two README commands: `make demo` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint demo lab-down bench clean

setup:
	@scripts/setup.sh

lint: setup
	$(VENV)/bin/ruff check pbxctl provisioning ivr_scripts tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/pbxctl lab up
	@echo "(stop it with: $(VENV)/bin/pbxctl lab down)"

lab-down: setup
	$(VENV)/bin/pbxctl lab down

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
