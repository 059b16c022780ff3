"""Print sshd's drop-in for experts' SSH access to their attempts (install as /etc/ssh/sshd_config.d/rebench.conf)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Print the sshd drop-in that lets experts log in to their running attempts' sandboxes: keys from"
        " SSH_ACCESS_KEYS_DIR, every session forced into the sandbox, no forwarding. Installs the forced command."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from workstation import layout, ssh_access

        layout.install_tools()  # the forced command the drop-in names must exist before sshd runs it
        self.stdout.write(ssh_access.sshd_config(), ending="")
