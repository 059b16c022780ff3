"""The attacker's seat: a real terminal of an attempt, opened as the browser does, and commands typed into it."""

from __future__ import annotations

import itertools
import re
from typing import Any

from tests.trials import terminal_support as ts
from trials.models import Attempt

_markers = itertools.count(1000)
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


async def open_shell(attempt: Attempt, number: int = 1) -> ts.Screen:
    """The expert's terminal `number`, through the site's WebSocket consumer, with a known prompt."""
    screen = await ts.open_screen(ts.router(), attempt.pk, attempt.user, number=number, cols=1000, rows=50)
    await screen.ready()
    return screen


async def run(screen: ts.Screen, command: str, timeout: float = 30) -> str:
    """Type `command` and return what it printed (escape sequences stripped).

    The end marker is computed by the shell (`$((n+1))`), so the echoed command line never contains
    it: what comes before it is the command's output.
    """
    n = next(_markers)
    start = len(screen.output)
    await screen.type(f"{command}; echo __END_$(({n}+1))__\r")
    await screen.until(f"__END_{n + 1}__", start=start, timeout=timeout)
    text = ANSI.sub(b"", screen.output[start:]).decode(errors="replace")
    body = text[: text.rindex(f"__END_{n + 1}__")]
    # Drop the echoed command line itself: it ends with the marker's unevaluated form.
    echoed = f"__END_$(({n}+1))__"
    if echoed in body:
        body = body.split(echoed, 1)[1]
        body = body.split("\n", 1)[1] if "\n" in body else ""
    return body


async def close(screen: Any) -> None:
    await screen.comm.disconnect()
