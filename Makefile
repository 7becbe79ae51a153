# The two README commands: `make demo` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint golden demo lab-down bench clean

setup:
	@scripts/setup.sh

lint: setup
	$(VENV)/bin/ruff check pbxctl provisioning ivr_scripts tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: setup lint
	env -u PBXCTL_UPDATE_GOLDEN $(PY) -m pytest $(PYTEST_ARGS)

# Rewrite tests/golden from the renderers (compares nothing); review with `git diff tests/golden`.
golden: setup
	PBXCTL_UPDATE_GOLDEN=1 $(PY) -m pytest -q -m golden

# The guided tour of the province lab: two prefectures (every seat a registered phone), then
# eight real calls/actions, one row each. A lab already up is reused.
DEMO_INVENTORY   ?= examples/zhejiang/province.yaml
DEMO_PREFECTURES ?= HZ,NB
demo: setup
	@$(VENV)/bin/pbxctl lab status >/dev/null 2>&1 || $(VENV)/bin/pbxctl lab up \
	    --inventory $(DEMO_INVENTORY) --prefectures $(DEMO_PREFECTURES) --always-open --hold-down 10
	$(VENV)/bin/pbxctl lab tour

lab-down: setup
	$(VENV)/bin/pbxctl lab down

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
