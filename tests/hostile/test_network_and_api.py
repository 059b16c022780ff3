"""From the shell the network is closed: no database, no Redis, no web server; only the attempt's own API and proxies.

Before the sandbox the shell shared the host's network: PostgreSQL (trust auth on 127.0.0.1),
Redis and the site itself were a connection away, and with a stolen token `curl` reached
admin-only endpoints.
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.conftest import ROOT_ONLY
from tests.hostile.shell import close, open_shell, run
from tests.trials import terminal_support as ts
from trials.models import Attempt

pytestmark = [ROOT_ONLY, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

CONNECT = (
    "python3 -c 'import socket, sys\n"
    "for port in sys.argv[1:]:\n"
    "    s = socket.socket(); s.settimeout(3)\n"
    '    print("PORT", port, s.connect_ex(("127.0.0.1", int(port))))\' '
)


@pytest.fixture
def web_port() -> Iterator[int]:
    """A listening port on the host's loopback, standing in for the web server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@ts.sync
async def test_the_database_redis_and_the_web_server_are_unreachable(attempt: Attempt, web_port: int) -> None:
    screen = await open_shell(attempt)
    out = await run(screen, CONNECT + f"5432 6379 5672 {web_port}")
    await close(screen)
    results = dict(line.split()[1:] for line in out.splitlines() if line.startswith("PORT"))
    assert results == {"5432": "111", "6379": "111", "5672": "111", str(web_port): "111"}, out  # ECONNREFUSED


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"proxy says hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def environment_proxy(term_dirs: Path, settings) -> Iterator[Path]:
    """An environment's proxy (an LLM budget proxy, a judge) on a Unix socket, set for the attempt's environment."""
    folder = term_dirs / "proxy"
    folder.mkdir()
    folder.chmod(0o755)
    path = folder / "llm.sock"
    server = _UnixHTTPServer(str(path), _Hello)
    os.chmod(path, 0o666)  # noqa: S103 - the sandbox's user connects to it, as to a real proxy's
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SANDBOX_ENVIRONMENT_BRIDGES = {"ai_rd_triton_cumsum": [[8765, str(path)]]}
    yield path
    server.shutdown()
    server.server_close()


@ts.sync
async def test_the_environments_proxy_is_reachable_when_configured_and_nothing_else(
    attempt: Attempt, environment_proxy: Path
) -> None:
    screen = await open_shell(attempt)
    out = await run(
        screen,
        "python3 -c 'import urllib.request; "
        'print(urllib.request.urlopen("http://127.0.0.1:8765/", timeout=5).read())\'',
    )
    assert "proxy says hello" in out, out
    blocked = await run(screen, CONNECT + "5432 80 443")
    await close(screen)
    assert all(line.split()[2] != "0" for line in blocked.splitlines() if line.startswith("PORT")), blocked


RAW = (
    "python3 -c 'import socket, sys, os\n"
    's = socket.socket(socket.AF_UNIX); s.connect(os.environ["REBENCH_API_SOCKET"])\n'
    's.sendall(("GET " + sys.argv[1] + " HTTP/1.1\\r\\nHost: x\\r\\n"\n'
    '  "Authorization: Token stolen\\r\\n\\r\\n").encode())\n'
    'print("ANSWER", s.recv(200).split(b"\\r\\n")[0])\' '
)


@ts.sync
async def test_the_shell_reaches_only_its_own_attempts_api_and_never_with_a_credential_of_its_own(
    attempt: Attempt, another_attempt: Attempt
) -> None:
    screen = await open_shell(attempt)
    refused = {
        path: await run(screen, RAW + path)
        for path in (
            "/workstations/",
            f"/attempts/{another_attempt.pk}/",
            f"/attempts/{attempt.pk}/../{another_attempt.pk}/",
            f"/attempts/{attempt.pk}/%2e%2e/{another_attempt.pk}/",
            "/admin/",
        )
    }
    await close(screen)
    for path, out in refused.items():
        assert "ANSWER b'HTTP/1.1 403" in out, (path, out)
