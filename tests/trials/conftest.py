"""Fixtures shared by the terminal tests: a scratch workspace/recording tree and running local and SSH attempts."""

from __future__ import annotations

import pytest

from tests import factories
from tests.trials import terminal_support as ts
from trials.models import Workstation


@pytest.fixture
def term_dirs(settings):
    root = ts.make_dirs(settings)
    yield root
    ts.cleanup_dirs(root)


@pytest.fixture
def local_attempt(term_dirs):
    attempt = factories.AttemptFactory.create(reservation__workstation__backend=Workstation.Backend.LOCAL)
    yield attempt
    from workstation.backends.local import end_attempt_sync

    end_attempt_sync(attempt.pk)


@pytest.fixture
def ssh_attempt(term_dirs):
    attempt = factories.AttemptFactory.create(
        reservation__workstation__backend=Workstation.Backend.SSH,
        reservation__workstation__host="127.0.0.1",
    )
    yield attempt
    ts.remove_remote_spool(attempt.pk)  # the test server's gate runs on this machine
