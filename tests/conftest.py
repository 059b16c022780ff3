"""Shared fixtures. Tests run on PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, else on SQLite."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import execnet
import hypothesis
import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from rest_framework.test import APIClient
from xdist.remote import Producer

from tests import factories, parallel
from tests.role_matrix import (  # noqa: F401 - the role matrix's fixtures, for every app's test_roles.py
    world,
    world_rows,
)

# Hypothesis's timing checks (a test's deadline, slow input generation) measure the machine, not the
# code: on a loaded CI machine, or with the suite's workers sharing two cores, they fail at random.
# What a property test proves is its property; its speed is the benchmarks' business.
hypothesis.settings.register_profile("rebench", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("rebench")

# A module that uses one of these runs real Celery workers or an environment's scorer: its tests are `slow`.
SLOW_HELPERS = ("running_worker", "worker_for", "run_scorer")


def is_slow(item: pytest.Item) -> bool:
    """Slow: a browser, a real Celery worker or an environment's scorer (seconds to minutes a test)."""
    module = getattr(item, "module", None)
    return "browser" in item.keywords or any(hasattr(module, name) for name in SLOW_HELPERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))
        if "redis" in item.keywords and not os.environ.get("REDIS_URL"):
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: Sequence[execnet.XSpec]) -> None:
    """Each pytest-xdist worker starts with its own data folder and Redis databases (tests/parallel.py)."""
    for index, spec in enumerate(specs):
        spec.env.update(parallel.worker_environment(index, data_dir=Path(settings.DATA_DIR), environ=dict(os.environ)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> parallel.FileScheduling:
    return parallel.FileScheduling(config, log)


# System programs some tests need. CI (.ci/run) installs them all; elsewhere a test that needs a
# missing one is skipped with the reason and the fix (`make test-tools` names them before the suite).
# A fixture that starts terminals or sandboxes calls skip_without(...), so the tests using it inherit
# the skip; a test that needs one without such a fixture takes the marker (needs_bwrap, ...).
MISSING_TOOL_REASONS = {
    "bwrap": "bubblewrap is missing (apt-get install bubblewrap): attempts' shells and scorers run in its sandbox",
    "rustc": "Debian's rustc is missing (apt-get install rustc): the Rust environment's judge compiles answers "
    "with it as an unprivileged user, who can't run a rustup toolchain under /root",
}
DEBIAN_RUSTC = "/usr/bin/rustc"


def tool_missing(tool: str) -> str | None:
    """Why the tests that need `tool` (bwrap or rustc) can't run here, or None where they can."""
    if tool == "rustc":
        present = os.path.isfile(DEBIAN_RUSTC) and os.access(DEBIAN_RUSTC, os.X_OK)
    else:
        present = shutil.which(tool) is not None
    return None if present else MISSING_TOOL_REASONS[tool]


def skip_without(*tools: str) -> None:
    """Skip the calling test (or fixture) with the reasons of every one of `tools` this machine lacks."""
    reasons = [reason for reason in map(tool_missing, tools) if reason]
    if reasons:
        pytest.skip("; ".join(reasons))


needs_bwrap = pytest.mark.skipif(tool_missing("bwrap") is not None, reason=MISSING_TOOL_REASONS["bwrap"])
needs_rustc = pytest.mark.skipif(tool_missing("rustc") is not None, reason=MISSING_TOOL_REASONS["rustc"])


# Per-attempt Unix users: attempt ids restart in every test database, so each test run
# names its users apart (rbt<pid>-<attempt id>) and deletes them at the end; subprocess workers
# inherit the prefix through the environment. Never another run's users, never the site's rb-a*.
TEST_ATTEMPT_USER_PREFIX = f"rbt{os.getpid()}-"
os.environ["TERMINAL_ATTEMPT_USER_PREFIX"] = TEST_ATTEMPT_USER_PREFIX
# The same for what the sandbox names after an attempt (terminal folders, cgroups, state folders).
TEST_SANDBOX_PREFIX = f"rbt{os.getpid()}"
os.environ["TERMINAL_TMUX_SOCKET_PREFIX"] = TEST_SANDBOX_PREFIX


@pytest.fixture(autouse=True, scope="session")
def _attempt_users_of_this_run():
    settings.TERMINAL_ATTEMPT_USER_PREFIX = TEST_ATTEMPT_USER_PREFIX
    settings.TERMINAL_TMUX_SOCKET_PREFIX = TEST_SANDBOX_PREFIX
    yield
    from tests.sandbox_support import remove_cgroups_with_prefix
    from tests.unix_users_support import delete_users_with_prefix

    remove_cgroups_with_prefix(TEST_SANDBOX_PREFIX)
    delete_users_with_prefix(TEST_ATTEMPT_USER_PREFIX)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for production; factories create users in every test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def expert(db):
    return factories.expert(username="ada")


@pytest.fixture
def other_expert(db):
    return factories.expert(username="grace")


@pytest.fixture
def reviewer(db):
    return factories.reviewer(username="rita")


@pytest.fixture
def admin_user(db):
    return factories.admin(username="root")


@pytest.fixture
def env_cumsum(db):
    return factories.environment("ai_rd_triton_cumsum")


@pytest.fixture
def workstation(db):
    return factories.WorkstationFactory.create(name="h100-a", gpu_count=8)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder attempt users can enter (pytest's tmp_path sits under root's 0700
    /tmp/pytest-of-root, which the sandbox report rightly names as unreachable)."""
    folder = Path(tempfile.mkdtemp(prefix="rebench-open-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def api() -> factories.ClientFor:
    """`api(user)` is a REST API client authenticated as `user`; `api(None)` is anonymous."""

    def make(user: AbstractBaseUser | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def no_role_user(db):
    return factories.UserFactory.create(username="nobody")
