# make run: the app on embedded defaults, seeded with a demo (installs only what running needs).
# make test: ruff, mypy, the migrations check and the whole suite, the manual's build included (installs the test tools).
# make docs: the manual in docs/ built strictly into site/; make docs-serve serves it on 127.0.0.1:8001.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A stamp per set of requirements, named by a hash of the files it installed: editing one of them
# installs again, and nothing else does.
hash = $(shell cat $(1) | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(call hash,requirements.txt)
DOCS_STAMP := $(VENV)/.installed-docs-$(call hash,requirements-docs.txt)
DEV_STAMP := $(VENV)/.installed-dev-$(call hash,requirements.txt requirements-dev.txt requirements-docs.txt)
# pip byte-compiles what it installs one file at a time (about 45 s of torch, triton and
# transformers on two cores); compileall does the same on every core. Compiled ahead all the same,
# not on first import: sandboxed scorers can't write into .venv and would compile torch on every run.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check --no-compile
COMPILE := $(PY) -m compileall -qq -j 0 $(VENV)/lib
# Material for MkDocs prints a banner about its successor on every build; a strict build reads no warning into it.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install run test test-quick lint format migrate seed docs docs-serve test-tools

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip

$(RUN_STAMP): | $(PY)
	$(PIP_INSTALL) -r requirements.txt
	$(COMPILE) || true
	rm -f $(VENV)/.installed-run-* && touch $@

$(DOCS_STAMP): | $(PY)
	$(PIP_INSTALL) -r requirements-docs.txt
	rm -f $(VENV)/.installed-docs-* && touch $@

# requirements-dev.txt includes the other two, so a dev install stands for all three.
$(DEV_STAMP): | $(PY)
	$(PIP_INSTALL) -r requirements-dev.txt
	$(COMPILE) || true
	rm -f $(VENV)/.installed-* && touch $@ $(RUN_STAMP) $(DOCS_STAMP)

# Everything: the app, the test tools and the docs builder.
install: $(DEV_STAMP)

# Where this machine can't sandbox attempts (no bubblewrap, no user namespaces, cgroups not
# writable: a laptop, a container) the demo runs without a full sandbox, explicitly:
# `sandbox_check --env` prints SANDBOX_ALLOW_UNSAFE=true there (and why), nothing where it can.
UNSAFE_IF_NEEDED = $(eval UNSAFE := $(shell $(PY) manage.py sandbox_check --env))

migrate: $(RUN_STAMP)
	$(UNSAFE_IF_NEEDED)
	$(UNSAFE) $(PY) manage.py migrate --noinput

seed: migrate
	$(UNSAFE) $(PY) manage.py seed_demo

run: seed
	$(UNSAFE) $(PY) manage.py rundev

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The system programs some tests need: each missing one is named with what it is for, before the
# suite runs; the tests that need it are skipped, with the reason (.ci/run installs them all).
test-tools:
	@command -v bwrap >/dev/null || echo "make test: bubblewrap is missing (apt-get install bubblewrap): the tests that open terminals or run sandboxes are skipped"
	@command -v $${CHROMIUM_PATH:-chromium} >/dev/null || echo "make test: Chromium is missing (apt-get install chromium): the browser tests are skipped"
	@test -x /usr/bin/rustc || echo "make test: Debian's rustc is missing (apt-get install rustc): the Rust environment's judge tests are skipped"
	@test -x /usr/sbin/sshd || echo "make test: OpenSSH's sshd is missing (apt-get install openssh-server): the experts' SSH access tests are skipped"
	@command -v shellcheck >/dev/null || echo "make test: shellcheck is missing (apt-get install shellcheck): the set-up script's lint test is skipped"
	@command -v ip >/dev/null && command -v nsenter >/dev/null || echo "make test: ip or nsenter is missing (apt-get install iproute2 util-linux): the two-host workstation test is skipped"
	@test "$$(id -u)" = 0 || echo "make test: not root: the sandbox tests that switch users and make cgroups are skipped"

# The suite runs in TEST_WORKERS processes (pytest-xdist; tests/parallel.py keeps them apart): its
# tests mostly wait on real parts (shells, workers, browsers, scorers), so more workers than cores pay.
# The twenty slowest tests are named at the end, so a run that grows slower says where.
TEST_WORKERS ?= 4
test: lint test-tools
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --durations=20

# Everything but the `slow` tests (browsers, real Celery workers, environments' scorers): a quick check while working.
test-quick: lint test-tools
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow"

docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

docs-serve: $(DOCS_STAMP)
	$(PY) -m mkdocs serve --strict --dev-addr 127.0.0.1:8001
