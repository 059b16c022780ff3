"""The local HTTP servers' common part: 127.0.0.1 or a Unix socket, run in a thread, and JSON in and out."""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_REQUEST_BYTES = 2 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its own timeout) is not our error; anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The same HTTP handlers on a Unix socket (no host/port: BaseHTTPRequestHandler needs neither)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class _LocalServer:
    """A threading HTTP server on 127.0.0.1 (a free port) or on a Unix socket, run in a thread; a context manager."""

    def __init__(self, port: int = 0, *, unix_socket: str | os.PathLike[str] | None = None) -> None:
        self._port = port
        self._unix_socket = os.fspath(unix_socket) if unix_socket is not None else None
        self._server: _Server | _UnixServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> _LocalServer:
        if self._unix_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix_socket)  # a socket left by an earlier run
            self._server = _UnixServer(self._unix_socket, self._handler())
            # Its owner only: on the workstation the harness connects as the same user.
            os.chmod(self._unix_socket, 0o600)
        else:
            self._server = _Server(("127.0.0.1", self._port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if self._unix_socket is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._unix_socket)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        assert self._unix_socket is None, "a Unix-socket server has no port"
        address = self._server.server_address
        assert isinstance(address, tuple)  # a TCP server's: (host, port)
        port: int = address[1]
        return port

    @property
    def socket_path(self) -> str | None:
        """The Unix socket it listens on (None on TCP)."""
        return self._unix_socket

    @property
    def url(self) -> str:
        """The base URL clients use, OpenAI style (`…/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"


def _read_json_body(handler: BaseHTTPRequestHandler) -> tuple[dict[str, Any] | None, str]:
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        return None, "Content-Length is not a number."
    if length <= 0:
        return None, "The request has no body."
    if length > MAX_REQUEST_BYTES:
        return None, f"The request is larger than {MAX_REQUEST_BYTES} bytes."
    try:
        body = json.loads(handler.rfile.read(length))
    except ValueError:
        return None, "The request body is not JSON."
    if not isinstance(body, dict):
        return None, "The request body must be a JSON object."
    return body, ""


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}
