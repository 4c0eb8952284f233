# Development commands. Everything is installed into .venv, so the only
# requirement is python3 (3.11 or newer) with pip and venv.
#
#   make serve   migrate the database and run the development server
#   make test    run the whole test suite (needs PostgreSQL and Redis)

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
# The fixtures give each xdist worker its own PostgreSQL database, SQLite
# files and server ports, so the suite is safe to run in parallel.
PYTEST_ARGS ?= -n 2

BIN := $(VENV)/bin
# Stamp files record a finished install. They are rebuilt when the
# packaging files change, so a second run skips pip altogether.
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test
PACKAGING := setup.cfg pyproject.toml

.PHONY: serve test install install-test clean

serve: $(INSTALLED)
	$(BIN)/authserver db upgrade
	exec $(BIN)/authserver run --host $(HOST) --port $(PORT)

test: $(INSTALLED_TEST)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(INSTALLED)

install-test: $(INSTALLED_TEST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(PACKAGING) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(INSTALLED_TEST): $(PACKAGING) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(INSTALLED)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
