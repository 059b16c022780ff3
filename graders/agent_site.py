"""The site in-process, for the web host's own worker (the local workstation's queue): no HTTP, no token.

It is trusted as the web host is, so it speaks for any workstation (`workstation=None`); each call is
the same service function the agent API calls for a workstation's agent (graders.agent_api).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import db

from graders.services import agent
from workstation.agent.site import Site


class InProcessSite(Site):
    def scoring_begin(self, job_id: str) -> dict[str, Any] | None:
        try:
            return agent.agent_scoring_begin(job_id=job_id, workstation=None)
        except agent.NotFound:
            return None

    def scoring_beat(self, job_id: str) -> None:
        try:
            agent.agent_scoring_beat(job_id=job_id, workstation=None)
        finally:
            db.connection.close()  # beats come from the agent's beat thread: its connection, closed each time

    def scoring_finish(self, job_id: str, outcome: dict[str, Any], status: str) -> dict[str, Any]:
        return agent.agent_scoring_finish(
            job_id=job_id, outcome=agent.outcome_from_data(outcome), status=status, workstation=None
        )

    def preparation(self, attempt_id: int) -> dict[str, Any] | None:
        try:
            return agent.agent_preparation(attempt_id=attempt_id, workstation=None)
        except agent.NotFound:
            return None

    def preparation_done(self, attempt_id: int) -> None:
        agent.agent_preparation_done(attempt_id=attempt_id, workstation=None)

    def preparation_failed(self, attempt_id: int, reason: str) -> None:
        agent.agent_preparation_failed(attempt_id=attempt_id, reason=reason, workstation=None)

    def retirement(self, attempt_id: int) -> bool:
        return agent.agent_retirement(attempt_id=attempt_id, workstation=None)

    def heartbeat(self, workstation_id: int, inventory: Mapping[str, Any]) -> bool:
        return agent.agent_heartbeat(workstation_id=workstation_id, inventory=inventory, workstation=None)
