# make run: the app on embedded defaults, seeded with a demo.  make test: ruff + the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: install run test lint format migrate seed

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Where this machine can't sandbox attempts (no bubblewrap, no user namespaces, cgroups not
# writable: a laptop, a container) the demo runs without a full sandbox, explicitly:
# `sandbox_check --env` prints SANDBOX_ALLOW_UNSAFE=true there (and why), nothing where it can.
UNSAFE_IF_NEEDED = $(eval UNSAFE := $(shell $(PY) manage.py sandbox_check --env))

migrate: install
	$(UNSAFE_IF_NEEDED)
	$(UNSAFE) $(PY) manage.py migrate --noinput

seed: migrate
	$(UNSAFE) $(PY) manage.py seed_demo

run: seed
	$(UNSAFE) $(PY) manage.py rundev

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest
