#!/usr/bin/env python3
"""The `task` command in the expert's shell: status, score, notes, pause, resume, submit (stdlib only).

Inside the attempt's sandbox it talks to the site through the relay's Unix socket
(REBENCH_API_SOCKET): the relay, outside, adds the attempt's credential and lets only this
attempt's own API through. Outside a sandbox (a harness) it takes REBENCH_API_URL and a token.
"""

# This file is copied into the sandbox's tools folder as `task`; it must run on any python3 with no
# packages, so it imports nothing from the project.
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

SCORE_POLL_SECONDS = 2.0
SCORE_WAIT_SECONDS = 30 * 60
NO_SCORING = "Scoring isn't available for this environment yet: there is no scorer for it on this site."


class TaskError(Exception):
    pass


def _token() -> str:
    if os.environ.get("REBENCH_TOKEN"):
        return os.environ["REBENCH_TOKEN"]
    path = os.environ.get("REBENCH_TOKEN_FILE", "")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _config() -> tuple[str, str, str]:
    token = _token()
    missing = [n for n in ("REBENCH_API_URL", "REBENCH_ATTEMPT_ID") if not os.environ.get(n)]
    if not token:
        missing.append("REBENCH_TOKEN_FILE")
    if missing:
        raise TaskError(f"{', '.join(missing)} not set: `task` works inside the attempt's terminal, which sets them.")
    return os.environ["REBENCH_API_URL"].rstrip("/"), os.environ["REBENCH_ATTEMPT_ID"], token


def _message(body: Any) -> str:
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in body.items())
    return str(body)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.socket_path)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")[:500]


def _call_relay(path_socket: str, method: str, path: str, data: dict[str, Any] | None) -> tuple[int, Any]:
    attempt_id = os.environ.get("REBENCH_ATTEMPT_ID", "")
    if not attempt_id:
        raise TaskError("REBENCH_ATTEMPT_ID not set: `task` works inside the attempt's terminal, which sets it.")
    body = json.dumps(data).encode() if data is not None else None
    headers = {"Accept": "application/json", "Content-Length": str(len(body or b""))}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = _UnixConnection(path_socket)
    try:
        connection.request(method, f"/attempts/{attempt_id}/{path}", body=body, headers=headers)
        response = connection.getresponse()
        status, payload = response.status, _decode(response.read())
    except OSError as exc:
        raise TaskError(f"Can't reach the site through the workstation ({exc}).") from None
    finally:
        connection.close()
    if status in (401, 403):
        raise TaskError(f"Not allowed: {_message(payload)}")
    return status, payload


def call(method: str, path: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(status, JSON body) for an API call on this attempt; raises TaskError for answers it can't use."""
    relay = os.environ.get("REBENCH_API_SOCKET", "")
    if relay:
        return _call_relay(relay, method, path, data)
    api, attempt_id, token = _config()
    url = f"{api}/attempts/{attempt_id}/{path}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - the site's own URL
    request.add_header("Authorization", f"Attempt {token}")
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        payload = _decode(exc.read())
        if exc.code in (401, 403):
            raise TaskError(f"Not allowed: {_message(payload)}") from None
        return exc.code, payload
    except urllib.error.URLError as exc:
        raise TaskError(f"Can't reach the site at {api}: {exc.reason}") from None


def _expect(status: int, body: Any, *ok: int) -> Any:
    if status not in ok:
        raise TaskError(_message(body) if body is not None else f"The site answered {status}.")
    return body


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _when(stamp: str) -> str:
    """An API timestamp as a person reads it: to the second, in the shell's time zone (TZ), zone named."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S %Z}"


def cmd_status(args: argparse.Namespace) -> int:
    a = _expect(*call("GET", ""), 200)
    state = a["state"] + (f" ({a['pause_reason']})" if a.get("pause_reason") else "")
    print(f"Attempt {a['id']} · {a['environment']} · {state}")
    print(f"Working time {_hms(a['elapsed_seconds'])} of {_hms(a['time_limit_seconds'])}", end="")
    if a.get("remaining_seconds") is not None:
        print(f", {_hms(a['remaining_seconds'])} left", end="")
    print(f" (deadline {_when(a['deadline'])})" if a.get("deadline") else "")
    if a.get("end_reason"):
        print(f"Ended: {a['end_reason']}")
    return 0


def _print_entry(entry: dict[str, Any] | None) -> None:
    if not entry:
        print("No score entry was recorded.")
        return
    for key in ("score", "raw_score", "normalized_score", "message"):
        if key in entry and entry[key] not in (None, ""):
            print(f"{key.replace('_', ' ')}: {entry[key]}")
    if not any(k in entry for k in ("score", "raw_score", "message")):
        print(json.dumps(entry, indent=2))


def cmd_score(args: argparse.Namespace) -> int:
    status, body = call("POST", "score/", {})
    if status == 404:
        print(NO_SCORING)
        return 2
    job = _expect(status, body, 200, 201, 202)
    job_id = job.get("job")
    print(f"Scoring queued (job {job_id}); the clock is paused while the scorer runs. Waiting for the result…")
    started = time.monotonic()
    try:
        while time.monotonic() - started < SCORE_WAIT_SECONDS:
            status, body = call("GET", f"score-jobs/{job_id}/")
            if status == 404:
                print(NO_SCORING)
                return 2
            result = _expect(status, body, 200)
            if result.get("status") == "done":
                _print_entry(result.get("entry"))
                return 0
            if result.get("status") == "failed":
                print("Scoring failed.")
                _print_entry(result.get("entry"))
                return 1
            time.sleep(SCORE_POLL_SECONDS)
    except KeyboardInterrupt:
        print("\nStill scoring in the background; `task score-log` shows the result when it lands.")
        return 130
    print("Still scoring after 30 minutes; `task score-log` shows the result when it lands.")
    return 1


def cmd_score_log(args: argparse.Namespace) -> int:
    status, body = call("GET", "score-log/")
    if status == 404:
        print(NO_SCORING)
        return 2
    log = _expect(status, body, 200)
    entries = log.get("entries", []) if isinstance(log, dict) else []
    if not entries:
        print("No scores yet: run `task score`.")
        return 0
    hidden = isinstance(log, dict) and not log.get("scores_visible", True)
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        when = _hms(entry.get("elapsed_seconds"))
        if not entry.get("valid", True):
            score = "invalid"
        elif hidden:
            score = "valid (score hidden)"
        else:
            score = f"{entry.get('score')}"
        print(f"{when}  {score}  {entry.get('message', '')}".rstrip())
    if hidden:
        print("This environment shows whether a score is valid, not the score itself.")
    return 0


def cmd_instructions(args: argparse.Namespace) -> int:
    body = _expect(*call("GET", "instructions/"), 200)
    text = (body or {}).get("instructions", "").rstrip()
    print(text or "This environment has no written instructions on this site.")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    text = " ".join(args.text).strip() or (sys.stdin.read().strip() if not sys.stdin.isatty() else "")
    if not text:
        raise TaskError('Give the note: task note "what I tried and why"')
    _expect(*call("POST", "notes/", {"body": text}), 201)
    print("Note saved.")
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    _expect(*call("POST", "pause/", {"reason": "break"}), 200)
    print("Paused: the clock has stopped. `task resume` when you're back.")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    _expect(*call("POST", "resume/"), 200)
    print("Resumed: the clock is running.")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise TaskError("Submitting ends the attempt for good; run `task submit --yes` to confirm.")
        answer = input("Submit now? The attempt ends and the clock stops for good. Type 'yes': ")
        if answer.strip().lower() != "yes":
            print("Not submitted.")
            return 1
    _expect(*call("POST", "submit/"), 200)
    print("Submitted. The attempt has ended; this terminal will close.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="task", description="Your RE-Bench attempt, from the shell.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="the attempt's clock").set_defaults(func=cmd_status)
    sub.add_parser("score", help="run the environment's scorer and wait for the result").set_defaults(func=cmd_score)
    sub.add_parser("score-log", help="every score so far").set_defaults(func=cmd_score_log)
    sub.add_parser("instructions", help="the task's instructions (Markdown)").set_defaults(func=cmd_instructions)
    note = sub.add_parser("note", help="add a note to the attempt")
    note.add_argument("text", nargs="*")
    note.set_defaults(func=cmd_note)
    sub.add_parser("pause", help="pause the clock for a break").set_defaults(func=cmd_pause)
    sub.add_parser("resume", help="resume after a break").set_defaults(func=cmd_resume)
    submit = sub.add_parser("submit", help="end the attempt: you are done")
    submit.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    submit.set_defaults(func=cmd_submit)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TaskError as exc:
        print(f"task: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
