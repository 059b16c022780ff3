"""The tunnel's pieces that need no sshd: what its configuration allows, whose keys it takes, where it refuses.

The tunnel itself, end to end with a real sshd and client, is in tests/hostile/test_ssh_access.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from workstation.sandbox import Policy
from workstation.sandbox.bwrap import bwrap_argv
from workstation.sandbox.ssh_gate import _tunnel_keys, _tunnel_prepare, tunnel_config


def policy(tmp_path: Path, **changes: object) -> Policy:
    keys = tmp_path / "keys"
    keys.write_text(
        "restrict,pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExpertKey expert@laptop\n"
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINoOptions\n"  # not a line the workstation writes: left out
        "restrict,pty ecdsa-sha2-nistp256 AAAAE2VjZHNhSecond\n"
    )
    (tmp_path / "state").mkdir(exist_ok=True)
    made = Policy(
        name="rb-a7",
        attempt_id=7,
        state_dir=str(tmp_path / "state"),
        workspace=str(tmp_path / "work"),
        tools_dir=str(tmp_path / "tools"),
        uid=-1,
        gid=-1,
        ssh_keys_file=str(keys),
        ssh_tunnel=True,
        login_home="/home/rb-a7",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_the_inner_sshd_forwards_outward_only_and_gives_no_terminal_agent_or_listener(tmp_path: Path) -> None:
    text = tunnel_config(policy(tmp_path))
    lines = set(text.splitlines())
    for line in (
        "AllowTcpForwarding local",
        "AllowStreamLocalForwarding local",
        "PermitListen none",
        "GatewayPorts no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PermitTTY no",
        "PermitUserRC no",
        "PermitUserEnvironment no",
        "PasswordAuthentication no",
        "HostKey /run/rebench/ssh/host_ed25519",
        "AuthorizedKeysFile /run/rebench/ssh/authorized_keys",
    ):
        assert line in lines, line
    setenv = next(line for line in lines if line.startswith("SetEnv "))
    assert '"HOME=/home/agent"' in setenv
    assert '"REBENCH_ATTEMPT_ID=7"' in setenv


def test_the_inner_hop_takes_exactly_the_keys_the_workstation_wrote_with_its_own_options(tmp_path: Path) -> None:
    lines = _tunnel_keys(policy(tmp_path)).decode().splitlines()
    assert lines == [
        "no-agent-forwarding,no-X11-forwarding,no-user-rc,no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExpertKey",
        "no-agent-forwarding,no-X11-forwarding,no-user-rc,no-pty ecdsa-sha2-nistp256 AAAAE2VjZHNhSecond",
    ]
    assert _tunnel_keys(policy(tmp_path, ssh_keys_file=str(tmp_path / "missing"))) == b""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"isolate": False}, "runs attempts without one"),
        ({"ssh_tunnel": False}, "doesn't offer the tunnel"),
        ({"ssh_keys_file": "/nonexistent/keys"}, "no SSH keys"),
    ],
)
def test_the_tunnel_refuses_without_a_sandbox_when_turned_off_or_without_keys(
    tmp_path: Path, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        _tunnel_prepare(policy(tmp_path, **changes))
    assert not (tmp_path / "state" / "run").exists()  # nothing written on the way to a refusal


@pytest.mark.parametrize(
    ("home", "linked"),
    [
        ("/home/rb-a7", True),
        ("/srv/rebench/homes/rb-a7", True),
        ("/home/agent", False),  # the workspace's own name
        ("/home", False),  # HOME's parent
        ("/", False),
        ("/usr/local/rb-a7", False),  # inside a read-only system bind
        ("/tmp/rb-a7", False),  # noqa: S108 - a path the sandbox makes a tmpfs of, not a file we use
        ("relative/home", False),
        ("", False),
    ],
)
def test_the_login_home_links_to_the_workspace_only_where_the_sandbox_can_make_a_link(
    tmp_path: Path, home: str, linked: bool
) -> None:
    argv = bwrap_argv(policy(tmp_path, login_home=home), ["true"])
    links = [argv[i + 1 : i + 3] for i, part in enumerate(argv) if part == "--symlink" and argv[i + 1] == "/home/agent"]
    assert links == ([["/home/agent", home]] if linked else [])
