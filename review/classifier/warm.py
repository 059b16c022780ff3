"""Warm the classifier when a web server starts: torch, the encoder and the active head load in a
background thread, so a reviewer's first red-team request doesn't wait for them.

Light on purpose: AppConfig.ready imports this in every process (migrate, shell, tests, workers),
and only a web server goes on to import torch.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

WEB_SERVERS = frozenset({"uvicorn", "gunicorn", "daphne", "hypercorn"})


def preload_wanted(setting: str, argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this process should load the classifier at start-up.

    CLASSIFIER_PRELOAD "1"/"0" decides outright; "auto" (the default) means only in a web server
    process (uvicorn, gunicorn, daphne, hypercorn, or runserver's serving child): not in migrate,
    shell, tests or the Celery worker, where nobody waits on a first request.
    """
    value = (setting or "auto").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"} or not argv:
        return False
    program = Path(argv[0])
    # `uvicorn …` runs …/bin/uvicorn; `python -m uvicorn …` runs …/uvicorn/__main__.py.
    if program.name in WEB_SERVERS or (program.name == "__main__.py" and program.parent.name in WEB_SERVERS):
        return True
    # runserver's autoreloader serves from a child it marks with RUN_MAIN; the parent only watches files.
    return len(argv) > 1 and argv[1] == "runserver" and environ.get("RUN_MAIN") == "true"


def preload_setting() -> str:
    return str(settings.CLASSIFIER_PRELOAD)


def warm_up_in_background(argv: Sequence[str] | None = None) -> threading.Thread | None:
    """Start runtime.warm_up in a daemon thread when this process is a web server (see preload_wanted)."""
    if not preload_wanted(preload_setting(), sys.argv if argv is None else argv, os.environ):
        return None

    def run() -> None:
        from django.apps import apps
        from django.db import connections

        # Started from AppConfig.ready: let the registry finish before the first query.
        while not apps.ready:
            time.sleep(0.05)
        try:
            from review.classifier import runtime

            runtime.warm_up()
        except Exception:
            # A missing encoder folder or weights file: the requests that need them will say so.
            logger.exception("classifier warm-up failed; it will load on first use")
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=run, name="classifier-warm-up", daemon=True)
    thread.start()
    return thread
