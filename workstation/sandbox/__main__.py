"""The sandbox's command line, run with the system's python3 (no Django).

    python -m workstation.sandbox daemon STATE_DIR         start the keeper (forks away; see keeper.py)

Everything else (start, control, stop, the host's check) is called in-process by the web host, the
agent or an SSH workstation's gate.
"""

from __future__ import annotations

import sys

from . import main_daemon


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(__doc__ or "")
        return 2
    if argv[0] != "daemon" or len(argv) != 2:
        sys.stderr.write(f"unknown command {' '.join(argv)[:80]!r}\n")
        return 2
    return main_daemon(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
