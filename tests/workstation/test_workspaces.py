"""Starting files go into a workspace as the attempt's own user: nothing overwritten, links kept as links."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trials import terminal_support as ts
from workstation import layout, sandbox, workspaces
from workstation.backends import SandboxRequest
from workstation.policy import local_policy

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attempt's own user: needs root")
ATTEMPT = 990001


@pytest.fixture
def policy(settings: Any) -> Iterator[sandbox.Policy]:
    root = ts.make_dirs(settings, tools=())  # no shell: populating a workspace needs neither tmux nor a sandbox
    layout.install_tools()
    found = local_policy(SandboxRequest(attempt_id=ATTEMPT))
    workspaces.make(found)
    yield found
    sandbox.stop(found.state_dir, remove=True)
    ts.cleanup_dirs(root)


def test_populate_copies_what_is_missing_keeps_what_exists_and_recreates_links(policy: sandbox.Policy) -> None:
    staging = Path(policy.state_dir).parent.parent / "staging"
    (staging / "data").mkdir(parents=True)
    (staging / "solution.py").write_text("print('start')\n")
    (staging / "notes.txt").write_text("ours\n")
    os.symlink("/srv/openwebtext/train.bin", staging / "data" / "train.bin")
    workspace = Path(policy.workspace)
    (workspace / "notes.txt").write_text("the expert's\n")
    os.chown(workspace / "notes.txt", policy.uid, policy.gid)

    copied = workspaces.populate(policy, staging)

    assert sorted(copied) == ["data/train.bin", "solution.py"]
    assert (workspace / "notes.txt").read_text() == "the expert's\n"
    assert os.readlink(workspace / "data" / "train.bin") == "/srv/openwebtext/train.bin"
    assert (workspace / "solution.py").stat().st_uid == policy.uid, "the attempt's user wrote it, not root"
