"""The harness: the trusted scorer's requests to run the expert's code, each in a new instance."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from workstation import sandbox
from workstation.scoring.instances import (
    EXCHANGE,
    HARNESS_CODE,
    HARNESS_IN,
    HARNESS_OUT,
    REQUEST_MAX_BYTES,
    _plain_env,
    run_instance,
)
from workstation.scoring.protected import _give, _protected_or_own_gid, protect_tree, protected_folder
from workstation.scoring.snapshot import unpack_regular_files
from workstation.users import is_root


class HarnessServer:
    """Serves the trusted scorer's requests to run the expert's code, each in a new harness instance."""

    def __init__(self, *, policy: sandbox.Policy, run_dir: Path, job: str, code: Path | None) -> None:
        self.policy = policy
        self.run_dir = run_dir
        self.job = job
        self.code = code
        self.count = 0
        self.lock = threading.Lock()
        self.path = run_dir / "harness.sock"
        import socket

        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with sandbox.unix_path(str(self.path)) as address:
            self.listener.bind(address)
        if is_root():
            os.chown(self.path, policy.uid, policy.gid)
        self.path.chmod(0o600)
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Any) -> None:
        with connection:
            data = b""
            while not data.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
                if len(data) > REQUEST_MAX_BYTES:
                    connection.sendall(
                        json.dumps({"error": f"request over {REQUEST_MAX_BYTES} bytes"}).encode() + b"\n"
                    )
                    return
            try:
                request = json.loads(data)
                answer = self.run(request)
            except Exception as exc:  # a bad request is the scorer's bug: it gets the reason
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            connection.sendall(json.dumps(answer).encode() + b"\n")

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.count += 1
            number = self.count
        exchange = self.run_dir / "exchange"
        out = _give(self.run_dir / f"out-{number}", self.policy.uid, self.policy.gid)
        ro_binds: list[tuple[str, str]] = []
        if self.code is not None:
            ro_binds.append((str(self.code), HARNESS_CODE))
        inputs = str(request.get("inputs") or "")
        if inputs:
            source = (exchange / inputs).resolve()
            if not source.is_relative_to(exchange.resolve()) or not source.is_dir():
                raise ValueError(f"inputs must be a folder in the exchange, not {inputs!r}")
            ro_binds.append((str(source), HARNESS_IN))
        bridges = []
        for port, socket_name in request.get("bridges") or []:
            path = (exchange / str(socket_name)).resolve()
            if not path.is_relative_to(exchange.resolve()):
                raise ValueError("a bridge's socket must be in the exchange")
            ro_binds.append((str(path), f"/run/bridges/{int(port)}.sock"))
            bridges += ["--bridge", f"{int(port)}=/run/bridges/{int(port)}.sock"]
        argv = [str(a) for a in request["argv"]]
        if bridges:
            argv = [self.policy.python, f"{sandbox.TOOLS}/{sandbox.SPAWNER}", "run", *bridges, "--", *argv]
        memory_gb = float(request.get("memory_gb") or 0)
        result = run_instance(
            self.policy,
            f"harness-{self.job}-{number}",
            argv,
            timeout=float(request.get("timeout") or 600),
            env={**_plain_env(), **{str(k): str(v) for k, v in (request.get("env") or {}).items()}},
            memory_bytes=int(memory_gb * 1024**3) if memory_gb else None,
            ro_binds=ro_binds,
            rw_binds=[(str(out), HARNESS_OUT)],
            stdin=str(request.get("stdin") or "").encode(),
        )
        # What the expert's code wrote comes back as regular files in a folder the scorer can read
        # and the harness can't touch again.
        if result.sandbox_failed:
            raise sandbox.SandboxError(f"the harness's sandbox could not start: {result.stderr.strip()[:500]}")
        returned = protected_folder(exchange / f"harness-{number}", gid=_protected_or_own_gid(), mode=0o750)
        archive = self.run_dir / f".out-{number}.tar"
        import tarfile

        with tarfile.open(archive, "w") as tar:
            tar.add(out, arcname=".", filter=lambda i: i if (i.isfile() or i.isdir()) else None)
        files = unpack_regular_files(archive, returned)
        archive.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        if is_root():
            protect_tree(returned)
        return {
            "returncode": result.returncode,
            "timed_out": result.timed_out,
            "out_of_memory": result.out_of_memory,
            "duration": result.duration,
            "stdout": result.stdout[-20000:],
            "stderr": result.stderr[-20000:],
            "output_dir": f"{EXCHANGE}/harness-{number}",
            "files": files,
        }
