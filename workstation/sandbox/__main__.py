"""The sandbox's command line: what the SSH backend runs on a workstation, and how the keeper is started here.

    python -m workstation.sandbox daemon STATE_DIR         start the keeper (forks away; see keeper.py)
    python -m workstation.sandbox ensure < policy.json     start the sandbox unless it runs; prints its status
    python -m workstation.sandbox up < {policy, token, control}   ensure, then the relay's token and the control
    python -m workstation.sandbox control STATE_DIR < {…}  the server's latest pause/deadline/end; applied at once
    python -m workstation.sandbox status STATE_DIR
    python -m workstation.sandbox token STATE_DIR < token  the relay's credential for `task`
    python -m workstation.sandbox stop STATE_DIR [--remove]
    python -m workstation.sandbox check < {bwrap, cgroup_version, …}   why this host can't sandbox (JSON list)

Every command prints JSON on stdout; errors go to stderr with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys

from . import Policy, SandboxError, control, ensure, main_daemon, problems, set_token, status, stop


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "daemon":
            return main_daemon(rest[0])
        if command == "ensure":
            policy = Policy.from_json(json.load(sys.stdin))
            result: object = ensure(policy, [sys.executable, "-m", __package__ or "rebench_sandbox"])
        elif command == "up":
            request = json.load(sys.stdin)
            policy = Policy.from_json(request["policy"]).resolved()
            result = ensure(policy, [sys.executable, "-m", __package__ or "rebench_sandbox"])
            if request.get("token"):
                set_token(policy.state_dir, str(request["token"]))
            if request.get("control"):
                control(policy.state_dir, request["control"])
        elif command == "control":
            result = control(os.path.expanduser(rest[0]), json.load(sys.stdin))
        elif command == "status":
            result = status(os.path.expanduser(rest[0]))
        elif command == "token":
            set_token(os.path.expanduser(rest[0]), sys.stdin.read().strip())
            result = {"ok": True}
        elif command == "stop":
            result = {"stopped": stop(os.path.expanduser(rest[0]), remove="--remove" in rest)}
        elif command == "check":
            result = problems(**json.load(sys.stdin))
        else:
            sys.stderr.write(f"unknown command {command!r}\n")
            return 2
    except (SandboxError, OSError, ValueError, KeyError, IndexError) as exc:
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
