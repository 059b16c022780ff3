"""Experts' SSH keys: add one to the account, make a short-lived one for an attempt, remove one."""

from __future__ import annotations

import base64
import hashlib

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from rebench_site.errors import ServiceError
from trials.models import Attempt, SSHKey
from trials.services._shared import _require_owner, _require_running
from trials.services.sync import attempt_sandbox_sync
from workstation.ssh_access import PublicKeyError, parse_public_key

NAME_MAX_CHARS = 100


def fingerprint_of(blob: str) -> str:
    """OpenSSH's fingerprint of a key (`ssh-keygen -lf`): SHA256 of its bytes, base64 without padding."""
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _clean_name(name: str, comment: str) -> str:
    name = (name or comment or "key").strip()
    if len(name) > NAME_MAX_CHARS or any(ord(ch) < 32 for ch in name):
        raise ServiceError(f"A key's name is one line of at most {NAME_MAX_CHARS} characters.", field="name")
    return name


def _sync_running_attempts(user: User) -> None:
    """The workstations of the user's running attempts hear the new set of keys (after commit)."""
    for attempt in Attempt.objects.filter(user=user, status=Attempt.Status.RUNNING):
        attempt_sandbox_sync(attempt)


@transaction.atomic
def ssh_key_add(*, user: User, public_key: str, name: str = "") -> SSHKey:
    """Register a public key on `user`'s account: it opens each of their running attempts over SSH."""
    try:
        kind, blob, comment = parse_public_key(public_key)
    except PublicKeyError as exc:
        raise ServiceError(str(exc), field="public_key") from None
    clean = _clean_name(name, comment)
    User.objects.select_for_update().filter(pk=user.pk).first()  # one add at a time per user: the count holds
    if SSHKey.objects.filter(user=user, attempt__isnull=True).count() >= settings.SSH_ACCESS_MAX_KEYS:
        raise ServiceError(f"An account holds at most {settings.SSH_ACCESS_MAX_KEYS} keys.", field="public_key")
    fingerprint = fingerprint_of(blob)
    if SSHKey.objects.filter(user=user, fingerprint=fingerprint).exists():
        raise ServiceError("That key is registered already.", field="public_key")
    key = SSHKey.objects.create(user=user, name=clean, public_key=f"{kind} {blob}", fingerprint=fingerprint)
    _sync_running_attempts(user)
    return key


@transaction.atomic
def ssh_key_delete(*, key: SSHKey, by: User) -> None:
    if key.user_id != by.pk:
        from rebench_site.errors import NotAllowed

        raise NotAllowed("That key is not yours.")
    user = key.user
    key.delete()
    _sync_running_attempts(user)


@transaction.atomic
def ssh_key_create_for_attempt(*, attempt: Attempt, by: User) -> tuple[SSHKey, str]:
    """A new key pair that opens this attempt only, while it runs: the key and its private half (OpenSSH
    format), which is shown once and never stored."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _require_owner(attempt, by)
    _require_running(attempt)
    private = Ed25519PrivateKey.generate()
    private_text = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public_text = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )
    kind, blob, _comment = parse_public_key(public_text)
    key = SSHKey.objects.create(
        user=by,
        attempt=attempt,
        name=f"attempt {attempt.pk}",
        public_key=f"{kind} {blob}",
        fingerprint=fingerprint_of(blob),
    )
    attempt_sandbox_sync(attempt)
    return key, private_text
