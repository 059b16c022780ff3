"""The set-up script that makes a host a workstation, run for real against a scratch root, and a host key recorded."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from workstation import setup

SECRET_BROKER = 'redis://:p"a$s`w\\d@broker.internal:6379/0'


def host(**changes: object) -> setup.Host:
    values: dict[str, object] = {
        "name": "gpu1",
        "host": "gpu1.example.org",
        "queue_name": "ws.gpu1",
        "backend": "ssh",
        "ssh_user": "rebench",
        "checkout": "/srv/rebench",
        "environment": setup.worker_environment(
            {"REDIS_URL": "redis://cache.internal/0", "DATABASE_URL": "postgres://rb@db.internal/rb", "HOME": "/root"}
        ),
        "broker_url": SECRET_BROKER,
        "site_url": "https://rebench.example.org",
    }
    values.update(changes)
    return setup.Host(**values)  # type: ignore[arg-type]


def run(script: str, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The set-up script against a scratch root (REBENCH_SETUP_ROOT), with `env` added to its environment."""
    return subprocess.run(
        ["bash", "-s"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "REBENCH_SETUP_ROOT": str(root), **env},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_script_is_valid_bash() -> None:
    script = setup.script(host())
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("backend", ["ssh", "local"])
def test_shellcheck_finds_nothing_in_the_script(backend: str) -> None:
    result = subprocess.run(
        ["shellcheck", "-s", "bash", "-"],
        input=setup.script(host(backend=backend)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_under_a_scratch_root_it_writes_the_worker_unit_and_its_environment_file(tmp_path: Path) -> None:
    result = run(setup.script(host()), tmp_path)
    assert result.returncode == 0, result.stderr

    unit = tmp_path / "etc/systemd/system/rebench-worker.service"
    assert mode(unit) == 0o644
    text = unit.read_text()
    assert "EnvironmentFile=/etc/rebench/worker.env\n" in text
    assert "WorkingDirectory=/srv/rebench\n" in text
    assert (
        "ExecStart=/srv/rebench/.venv/bin/celery -A workstation.agent worker -Q ws.gpu1 -n gpu1@%H -l INFO"
        " --without-mingle --without-gossip\n"
    ) in text
    assert "EnvironmentFile=-/etc/rebench/agent-token.env\n" in text
    assert "User=root\n" in text
    # Restarting the worker must not take the attempts' keepers and terminal holders with it.
    assert "KillMode=process\n" in text
    assert "WantedBy=multi-user.target\n" in text

    env = tmp_path / "etc/rebench/worker.env"
    assert mode(env) == 0o600
    assert mode(env.parent) == 0o755
    assert "HOME" not in env.read_text()
    # What systemd reads back is what the web host has; bash reads the same escapes in double quotes.
    read = subprocess.run(
        [
            "bash",
            "-c",
            f'set -a; . "{env}"; '
            'printf "%s|%s|%s" "$CELERY_BROKER_URL" "$WORKSTATION_SITE_URL" "$DJANGO_SETTINGS_MODULE"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout == f"{SECRET_BROKER}|https://rebench.example.org|rebench_site.agent_settings"
    assert not list(tmp_path.rglob("*.new"))


def test_under_a_scratch_root_it_makes_the_data_folders_with_the_sites_modes(tmp_path: Path) -> None:
    result = run(setup.script(host()), tmp_path)
    assert result.returncode == 0, result.stderr

    data = tmp_path / str(settings.DATA_DIR).lstrip("/")
    assert mode(data) == 0o711
    assert mode(data / "locks") == 0o700
    assert mode(tmp_path / str(settings.TERMINAL_WORKSPACE_ROOT).lstrip("/")) == 0o711
    assert mode(tmp_path / str(settings.TERMINAL_HOLDER_DIR).lstrip("/")) == 0o711
    assert mode(tmp_path / str(settings.SANDBOX_TOOLS_DIR).lstrip("/")) == 0o755
    assert mode(tmp_path / str(settings.PROTECTED_DIR).lstrip("/")) == 0o711


def test_under_a_scratch_root_what_changes_the_system_is_printed_not_run(tmp_path: Path) -> None:
    result = run(setup.script(host()), tmp_path)

    assert "would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tmux " in (
        result.stdout
    )
    assert " bubblewrap python3 " in result.stdout
    assert "would run: chown root:root " in result.stdout
    assert "would run: systemctl enable rebench-worker.service" in result.stdout
    # No checkout with a virtualenv under the scratch root: the worker isn't started, and it says why.
    assert "systemctl restart" not in result.stdout
    assert "no /srv/rebench/.venv/bin/celery" in result.stderr


def test_with_the_checkout_in_place_the_worker_is_restarted_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    celery = tmp_path / "srv/rebench/.venv/bin/celery"
    celery.parent.mkdir(parents=True)
    celery.write_text("#!/bin/sh\n")
    celery.chmod(0o755)
    script = setup.script(host())

    first = run(script, tmp_path)
    files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    modes = {path: mode(path) for path in tmp_path.rglob("*")}
    second = run(script, tmp_path)

    assert first.returncode == second.returncode == 0, second.stderr
    assert "would run: systemctl restart rebench-worker.service" in second.stdout
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == files
    assert {path: mode(path) for path in tmp_path.rglob("*")} == modes


def test_the_holder_user_and_the_protected_group_are_made_when_missing(tmp_path: Path, settings) -> None:
    settings.TERMINAL_TMUX_USER = "rebench-test-nobody-has-this"

    result = run(setup.script(host()), tmp_path)

    expected = "would run: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "
    assert expected + "rebench-test-nobody-has-this" in result.stdout


def test_a_local_workstation_gets_no_ssh_steps(tmp_path: Path) -> None:
    script = setup.script(host(backend="local", ssh_user=""))

    assert "openssh-server" not in script
    assert "rebench-gate" not in script
    assert run(script, tmp_path).returncode == 0


def test_an_ssh_workstation_gets_the_gate_and_the_sites_key_limited_to_it_once(tmp_path: Path, settings) -> None:
    key = tmp_path / "site"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "web", "-f", str(key)], check=True)
    settings.TERMINAL_SSH_KEY = str(key)
    kind, blob = (tmp_path / "site.pub").read_text().split()[:2]
    scratch = tmp_path / "root"
    keys = scratch / "root/.ssh/authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdmin admin@laptop\n")
    script = setup.script(host(ssh_user=""))
    for _ in range(2):  # run again (an upgrade): the site's line is replaced, never added twice
        result = run(script, scratch)
        assert result.returncode == 0, result.stderr

    assert keys.read_text().splitlines() == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdmin admin@laptop",
        f'command="/usr/local/sbin/rebench-gate",restrict {kind} {blob} rebench-site-gate',
    ]
    assert mode(keys) == 0o600
    gate = scratch / "usr/local/sbin/rebench-gate"
    assert mode(gate) == 0o755
    assert (
        "cd /srv/rebench && exec /srv/rebench/.venv/bin/python -m workstation.gate --env /etc/rebench/worker.env\n"
    ) in gate.read_text()
    # The gate reads the environment file as systemd and bash do, quotes and escapes included.
    from workstation.gate import read_env_file

    written = read_env_file(str(scratch / "etc/rebench/worker.env"))
    assert written["CELERY_BROKER_URL"] == SECRET_BROKER
    assert written["DJANGO_SETTINGS_MODULE"] == "rebench_site.agent_settings"


def test_without_the_sites_key_the_script_says_where_its_line_goes(tmp_path: Path, settings) -> None:
    settings.TERMINAL_SSH_KEY = str(tmp_path / "missing")
    result = run(setup.script(host(ssh_user="")), tmp_path)

    assert result.returncode == 0, result.stderr
    assert 'command=\\"/usr/local/sbin/rebench-gate\\",restrict' not in result.stderr
    assert 'command="/usr/local/sbin/rebench-gate",restrict <key>' in result.stderr
    assert not (tmp_path / "root/.ssh/authorized_keys").exists()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"host": "gpu1; rm -rf /"}, "The host"),
        ({"queue_name": "ws gpu1"}, "The queue"),
        ({"checkout": "relative/path"}, "The checkout"),
        ({"ssh_user": "$(id)"}, "The SSH user"),
        ({"environment": {"REDIS_URL": "redis://a\nExecStart=/bin/sh"}}, "REDIS_URL"),
        ({"backend": "telnet"}, "backend"),
    ],
)
def test_values_a_shell_or_unit_file_would_misread_are_refused_naming_them(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(setup.SetupError, match=named):
        setup.script(host(**changes))


def test_the_worker_gets_the_sites_settings_and_nothing_else_of_the_environment() -> None:
    chosen = setup.worker_environment(
        {
            "REDIS_URL": "r",
            "SECRET_KEY": "s",
            "SANDBOX_MEMORY_GB": "64",
            "CHAT_RL_JUDGE_API_KEY": "k",
            "PATH": "/bin",
            "AWS_SECRET": "x",
        }
    )
    # Not the site's secret key, nor its cache's Redis: the agent holds no credential but its own.
    assert chosen == {"CHAT_RL_JUDGE_API_KEY": "k", "SANDBOX_MEMORY_GB": "64"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real OpenSSH server on loopback with a host key of this test's; its port and public key."""
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs root and OpenSSH's sshd")
    key = tmp_path / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    server = subprocess.Popen(
        [
            "/usr/sbin/sshd",
            "-D",
            "-e",
            "-f",
            "/dev/null",
            "-h",
            str(key),
            "-p",
            str(port),
            "-o",
            "ListenAddress=127.0.0.1",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, key.with_suffix(".pub")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_hosts_ssh_key_is_recorded_in_known_hosts_once(sshd: tuple[int, Path], tmp_path: Path) -> None:
    port, public_key = sshd
    known_hosts = tmp_path / "ssh" / "known_hosts"

    fingerprints = setup.known_hosts_record(host="127.0.0.1", port=port, known_hosts=known_hosts)
    setup.known_hosts_record(host="127.0.0.1", port=port, known_hosts=known_hosts)

    lines = known_hosts.read_text().splitlines()
    key_type, key_body = public_key.read_text().split()[:2]
    assert lines == [f"[127.0.0.1]:{port} {key_type} {key_body}"]
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert [line.split()[1] for line in fingerprints] == [expected]


def test_a_host_without_sshd_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(setup.SetupError, match=r"127\.0\.0\.1:\d+ gave no SSH host key"):
        setup.known_hosts_record(host="127.0.0.1", port=_free_port(), known_hosts=tmp_path / "known_hosts")
