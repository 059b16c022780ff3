"""Files on the attempt page: uploads land in the workspace as the attempt's user, downloads read it inside the
sandbox, both size-limited, and neither a path nor a link the expert planted reaches outside the workspace."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.hostile.conftest import ROOT_ONLY
from trials.models import Attempt
from workstation import layout, users
from workstation.backends.local import sandbox_up

pytestmark = [ROOT_ONLY, pytest.mark.django_db, pytest.mark.timeout(120)]


def client_of(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def upload(client: Client, attempt: Attempt, name: str, data: bytes, path: str = "") -> tuple[int, str]:
    url = reverse("trials:attempt-files-upload", args=[attempt.pk])
    response = client.post(url, {"file": SimpleUploadedFile(name, data), "path": path})
    return response.status_code, response.content.decode(errors="replace")


def download(client: Client, attempt: Attempt, path: str) -> tuple[int, bytes]:
    response = client.get(reverse("trials:attempt-files-download", args=[attempt.pk]), {"path": path})
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    return response.status_code, body


def give(attempt: Attempt, path: Path) -> None:
    """A file the test made as root, made the attempt's as if its expert had written it."""
    owner = users.attempt_user(attempt.pk)
    os.lchown(path, owner.uid, owner.gid)


def workspace(attempt: Attempt) -> Path:
    from trials import selectors

    sandbox_up(selectors.attempt_sandbox_request(attempt))
    return layout.workspace(attempt.pk)


def test_the_expert_uploads_into_the_workspace_as_the_attempts_user_and_downloads_it_back(attempt: Attempt) -> None:
    folder = workspace(attempt)
    status, _ = upload(client_of(attempt.user), attempt, "data.csv", b"a,b\n1,2\n", path="inputs/raw")
    assert status == 302
    written = folder / "inputs" / "raw" / "data.csv"
    assert written.read_bytes() == b"a,b\n1,2\n"
    assert written.stat().st_uid == users.attempt_user(attempt.pk).uid
    status, body = download(client_of(attempt.user), attempt, "inputs/raw/data.csv")
    assert (status, body) == (200, b"a,b\n1,2\n")
    status, body = download(client_of(attempt.user), attempt, "inputs")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = tar.extractfile("inputs/raw/data.csv")
        assert member is not None
        assert member.read() == b"a,b\n1,2\n"


def test_another_expert_can_neither_upload_nor_download_and_an_admin_may_download(
    attempt: Attempt, settings: object
) -> None:
    folder = workspace(attempt)
    (folder / "notes.txt").write_text("mine")
    give(attempt, folder / "notes.txt")
    stranger = client_of(factories.expert())
    assert upload(stranger, attempt, "x.txt", b"x")[0] == 404
    assert download(stranger, attempt, "notes.txt")[0] == 404
    assert not (folder / "x.txt").exists()
    status, body = download(client_of(factories.admin()), attempt, "notes.txt")
    assert (status, body) == (200, b"mine"), body[body.find(b"errorlist") : body.find(b"errorlist") + 300]
    assert upload(client_of(factories.admin()), attempt, "x.txt", b"x")[0] == 403


def test_a_file_over_the_limit_is_a_400_naming_the_field(attempt: Attempt, settings: object) -> None:
    settings.ATTEMPT_UPLOAD_MAX_MB = 1  # type: ignore[attr-defined]
    folder = workspace(attempt)
    status, page = upload(client_of(attempt.user), attempt, "big.bin", b"x" * (1024 * 1024 + 1))
    assert status == 400
    assert "file: A file may be at most 1 MB." in page
    assert not (folder / "big.bin").exists()
    settings.ATTEMPT_DOWNLOAD_MAX_MB = 1  # type: ignore[attr-defined]
    (folder / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    give(attempt, folder / "big.bin")
    status, body = download(client_of(attempt.user), attempt, "big.bin")
    assert status == 400
    assert b"over the download limit" in body, body[body.find(b"errorlist") : body.find(b"errorlist") + 300]


@pytest.mark.parametrize("path", ["../", "../other", "/etc", "a/../../b", "a\x00b"])
def test_a_path_out_of_the_workspace_is_a_400_naming_the_field(attempt: Attempt, path: str) -> None:
    workspace(attempt)
    status, page = upload(client_of(attempt.user), attempt, "x.txt", b"x", path=path)
    assert status == 400
    assert "path:" in page
    status, body = download(client_of(attempt.user), attempt, path)
    assert status == 400
    # A NUL never reaches the view: the site refuses it in any query string, with its own message.
    assert b"path:" in body or b"NUL characters" in body


def test_a_link_the_expert_planted_is_never_followed_out_of_the_workspace(
    attempt: Attempt, another_attempt: Attempt
) -> None:
    folder = workspace(attempt)
    theirs = workspace(another_attempt)
    (theirs / "secret.txt").write_text("their-secret")
    give(another_attempt, theirs / "secret.txt")
    for name, target in (("theirs", str(theirs)), ("etc", "/etc"), ("shadow", "/etc/shadow")):
        os.symlink(target, folder / name)
        give(attempt, folder / name)
    expert = client_of(attempt.user)
    assert download(expert, attempt, "theirs/secret.txt")[0] == 400
    assert download(expert, attempt, "shadow")[0] == 400
    status, _ = upload(expert, attempt, "passwd", b"pwned", path="etc")
    assert status == 400
    status, _ = upload(expert, attempt, "shadow", b"pwned")
    assert status == 400
    assert not (theirs / "passwd").exists()
    assert b"pwned" not in Path("/etc/shadow").read_bytes()
    # A whole-workspace download keeps links as links: nothing of what they point at comes out.
    status, body = download(expert, attempt, "")
    assert status == 200
    assert b"their-secret" not in body
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert all(member.isfile() or member.isdir() for member in tar.getmembers())
