"""Onboarding a workstation: its set-up script, made from its row and this web host's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping

from trials.models import Workstation
from workstation import setup


def workstation_setup_host(*, workstation: Workstation, environ: Mapping[str, str] | None = None) -> setup.Host:
    """What the set-up script needs of `workstation`; the worker shares this process's environment."""
    return setup.Host(
        name=workstation.name,
        host=workstation.host,
        queue_name=workstation.queue_name,
        backend=workstation.backend,
        ssh_user=workstation.ssh_user,
        ssh_port=workstation.ssh_port,
        environment=setup.worker_environment(os.environ if environ is None else environ),
    )


def workstation_setup_script(*, workstation: Workstation, environ: Mapping[str, str] | None = None) -> str:
    """The set-up script of `workstation` (setup.SetupError if a value can't go into one)."""
    return setup.script(workstation_setup_host(workstation=workstation, environ=environ))
