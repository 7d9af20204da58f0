# ChatOrbit: `make run` starts the product on loopback, `make test` runs the whole suite.
# Both set up what they need: Debian packages (apt-get as root, else the exact command
# to run is printed), a virtual environment in .venv and the project in it.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= run
RENDEZVOUS_PORT ?= 50001

.PHONY: run test bench screenshots lint typecheck pytest setup system-deps clean

setup: system-deps $(STAMP)

system-deps:
	@.ci/system-deps .ci/debian-packages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "Installing the project into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]' \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

run: setup
	$(BIN)/python -m orbitd.demo --run-dir $(RUN_DIR) --rendezvous-port $(RENDEZVOUS_PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: setup lint typecheck pytest

bench: setup
	$(BIN)/python -m bench

# The UI tests save their screenshots under tests/.artifacts/ (ignored); this runs
# them with the README's pictures, docs/screenshots/, as the destination instead.
screenshots: setup
	ORBIT_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/test_ui_*.py

clean:
	rm -rf $(VENV) $(RUN_DIR) tests/.artifacts .pytest_cache .mypy_cache .ruff_cache *.egg-info
