"""The agent's one way to the site: the `Site` contract, and `HttpSite`, which speaks it over HTTPS.

Every call names one job or attempt, and the site answers only for those of the workstation whose
token signs the call (graders.agent_api): a workstation can't read or write another's. Answers are
plain data. Which implementation an agent uses is a setting (WORKSTATION_SITE): the workstation
host's agent settings name HttpSite; the web host's own worker, the site's services in-process.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

AUTH_KEYWORD = "Workstation"
API_PREFIX = "/api/workstation-agent/"


class SiteError(Exception):
    """The site refused the call or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status the site answered, if it answered


class Site(Protocol):
    """What a workstation may ask and tell the site. Each implementation does all of it."""

    def scoring_begin(self, job_id: str) -> dict[str, Any] | None:
        """The job's spec, now that this worker runs it (the attempt's clock stops); None: nothing to run."""

    def scoring_beat(self, job_id: str) -> None:
        """The scorer still runs."""

    def scoring_finish(self, job_id: str, outcome: dict[str, Any], status: str) -> dict[str, Any]:
        """The job's outcome; the answer's `retire` says the attempt ended and its user may be retired here."""

    def preparation(self, attempt_id: int) -> dict[str, Any] | None:
        """What preparing the attempt's workspace needs; None: the attempt is gone."""

    def preparation_done(self, attempt_id: int) -> None:
        """The workspace is ready: the site scores the starting solution, then the clock starts."""

    def preparation_failed(self, attempt_id: int, reason: str) -> None:
        """The workspace could not be prepared: the site says why on the attempt's page; no time is lost."""

    def retirement(self, attempt_id: int) -> bool:
        """Whether the attempt has ended, so its user may be retired here."""

    def heartbeat(self, workstation_id: int, inventory: Mapping[str, Any]) -> bool:
        """This machine answers, and what it has (workstation.inventory.report)."""


@cache
def site() -> Site:
    """The configured implementation (WORKSTATION_SITE), made once per process."""
    return import_string(settings.WORKSTATION_SITE)()  # type: ignore[no-any-return]  # a dotted path's class


class HttpSite(Site):
    """The site over HTTPS at WORKSTATION_SITE_URL, signed with WORKSTATION_AGENT_TOKEN."""

    # A few tries over a short outage of the network or the web server: a score is not given up lightly.
    TRIES = 5
    TIMEOUT_SECONDS = 30

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        self.base_url = (base_url or settings.WORKSTATION_SITE_URL).rstrip("/")
        self.token = token if token is not None else settings.WORKSTATION_AGENT_TOKEN
        if not self.base_url or not self.token:
            raise SiteError("The agent needs WORKSTATION_SITE_URL and WORKSTATION_AGENT_TOKEN.")

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the URL is the site's, from the settings (http or https)
            self.base_url + API_PREFIX + path,
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Authorization": f"{AUTH_KEYWORD} {self.token}", "Content-Type": "application/json"},
        )
        for attempt in range(1, self.TRIES + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.TIMEOUT_SECONDS) as answer:  # noqa: S310 - as above
                    return json.loads(answer.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == self.TRIES:
                    detail = exc.read()[:500].decode(errors="replace")
                    raise SiteError(f"The site answered {exc.code} to {path}: {detail}", exc.code) from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.TRIES:
                    raise SiteError(f"The site could not be reached for {path}: {exc}") from exc
            log.warning("call to the site's %s failed; trying again (%s of %s)", path, attempt, self.TRIES)
            time.sleep(min(2**attempt, 20))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _spec(self, path: str) -> dict[str, Any] | None:
        """A spec, or None where the site knows no such job or attempt of this workstation's (404)."""
        try:
            return self._call(path)["spec"]  # type: ignore[no-any-return]  # the site's JSON
        except SiteError as exc:
            if exc.status == 404:
                return None
            raise

    def scoring_begin(self, job_id: str) -> dict[str, Any] | None:
        return self._spec(f"jobs/{job_id}/begin")

    def scoring_beat(self, job_id: str) -> None:
        self._call(f"jobs/{job_id}/beat")

    def scoring_finish(self, job_id: str, outcome: dict[str, Any], status: str) -> dict[str, Any]:
        return self._call(f"jobs/{job_id}/finish", {"outcome": outcome, "status": status})  # type: ignore[no-any-return]

    def preparation(self, attempt_id: int) -> dict[str, Any] | None:
        return self._spec(f"attempts/{attempt_id}/preparation")

    def preparation_done(self, attempt_id: int) -> None:
        self._call(f"attempts/{attempt_id}/prepared")

    def preparation_failed(self, attempt_id: int, reason: str) -> None:
        self._call(f"attempts/{attempt_id}/preparation-failed", {"reason": reason})

    def retirement(self, attempt_id: int) -> bool:
        return bool(self._call(f"attempts/{attempt_id}/retirement")["retire"])

    def heartbeat(self, workstation_id: int, inventory: Mapping[str, Any]) -> bool:
        # The token says which workstation this is; the id is the message's, checked against it.
        return bool(self._call("heartbeat", {"workstation": workstation_id, "inventory": inventory})["recorded"])
