"""The relay between `task` in the sandbox and the site: only the attempt's own paths, the credential added here."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from workstation.sandbox.keeper import relay_one

PREFIX = "/attempts/7/"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append(
            {"path": self.path, "body": body.decode(), **{k.lower(): v for k, v in self.headers.items()}}
        )
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()


def ask(state_dir: Path, upstream: str, request: bytes) -> bytes:
    ours, theirs = socket.socketpair()
    worker = threading.Thread(
        target=relay_one, args=(ours,), kwargs={"state_dir": str(state_dir), "upstream": upstream, "prefix": PREFIX}
    )
    worker.start()
    theirs.sendall(request)
    worker.join(10)
    ours.close()
    answer = b""
    while chunk := theirs.recv(65536):
        answer += chunk
    return answer


def test_the_attempts_own_call_goes_through_with_the_credential_added_and_its_own_dropped(
    tmp_path: Path, site: str
) -> None:
    (tmp_path / "token").write_text("the-attempts-token\n")
    answer = ask(
        tmp_path,
        site,
        b"POST /attempts/7/notes/?x=1 HTTP/1.1\r\nHost: evil\r\nAuthorization: Token stolen\r\nCookie: sessionid=s\r\n"
        b'Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{"body": 42}',
    )
    assert answer.startswith(b"HTTP/1.0 200")
    [seen] = _Recorder.seen
    assert seen["path"] == "/api/attempts/7/notes/?x=1"
    assert seen["authorization"] == "Attempt the-attempts-token"
    assert "cookie" not in seen
    assert seen["body"] == '{"body": 42}'


@pytest.mark.parametrize(
    "target",
    [
        "/workstations/",
        "/attempts/8/",
        "/attempts/7/../8/",
        "/attempts/7/%2e%2e/8/",
        "/attempts/7//8/",
        "/attempts/70/",
        "/admin/",
        "http://127.0.0.1:5432/attempts/7/",
    ],
)
def test_anything_but_the_attempts_own_paths_is_refused_before_it_leaves(
    tmp_path: Path, site: str, target: str
) -> None:
    (tmp_path / "token").write_text("t")
    answer = ask(tmp_path, site, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert _Recorder.seen == []


def test_a_huge_body_and_a_broken_request_get_a_400(tmp_path: Path, site: str) -> None:
    (tmp_path / "token").write_text("t")
    huge = ask(tmp_path, site, b"POST /attempts/7/notes/ HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 400")
    broken = ask(tmp_path, site, b"GARBAGE\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 400") or broken.startswith(b"HTTP/1.1 403")
    assert _Recorder.seen == []


def test_without_a_credential_the_relay_says_so(tmp_path: Path, site: str) -> None:
    answer = ask(tmp_path, site, b"GET /attempts/7/ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503")
