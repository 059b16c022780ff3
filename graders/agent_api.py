"""The workstation agent's API (workstation.agent.site.HttpSite): `Authorization: Workstation <token>`.

The token is the workstation's own (issued on its page or by `workstation_add`, revocable there),
and it opens these endpoints only: nothing else of the API knows the keyword, and these know no
other. Each call speaks of one job or attempt, answered only where it is this workstation's
(graders.services.agent); another's is a 404, the same as one that doesn't exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from graders.services import agent
from rebench_site.errors import ServiceError
from trials.models import Workstation
from trials.services import workstation_agent_token_hash
from workstation.agent.site import AUTH_KEYWORD

REASON_LIMIT = 500


class WorkstationAgentAuthentication(authentication.BaseAuthentication):
    """The caller is the workstation whose current token this is; request.auth is that Workstation."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, Workstation] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != AUTH_KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the header as `Authorization: Workstation <token>`.")
        try:
            token = parts[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The workstation token is not valid text.") from exc
        found = Workstation.objects.filter(agent_token_hash=workstation_agent_token_hash(token)).first()
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked workstation token.")
        if found.status == Workstation.Status.OFFLINE:
            raise exceptions.AuthenticationFailed(
                "This workstation is offline: its agent is refused until reactivated."
            )
        return AnonymousUser(), found

    def authenticate_header(self, request: Request) -> str:
        return AUTH_KEYWORD


class WorkstationAgentScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the workstation token."""

    target_class = "graders.agent_api.WorkstationAgentAuthentication"
    name = "workstationToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Workstation <token>`: a workstation agent's token, for its own jobs and attempts only.",
        }


class IsWorkstationAgent(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Workstation)


class AgentView(APIView):
    authentication_classes = [WorkstationAgentAuthentication]
    permission_classes = [IsWorkstationAgent]

    def workstation(self, request: Request) -> Workstation:
        assert isinstance(request.auth, Workstation)  # IsWorkstationAgent let only a workstation in
        return request.auth

    def answer(self, call: Any) -> Response:
        """The call's answer; a job or attempt that isn't this workstation's is a 404, bad input a 400."""
        try:
            return Response(call())
        except agent.NotFound as exc:
            return Response({"detail": exc.message}, status=status.HTTP_404_NOT_FOUND)


def _body(request: Request, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    data = request.data if isinstance(request.data, dict) else {}
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ServiceError(f"{name}: {what}.", field=name)
    return value


class JobBeginView(AgentView):
    @extend_schema(request=None, responses={200: dict}, description="The job's spec; the attempt's clock stops.")
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        ws = self.workstation(request)
        return self.answer(lambda: {"spec": agent.agent_scoring_begin(job_id=str(job_id), workstation=ws)})


class JobBeatView(AgentView):
    @extend_schema(request=None, responses={200: dict}, description="The job's scorer still runs.")
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        ws = self.workstation(request)
        return self.answer(lambda: {"running": agent.agent_scoring_beat(job_id=str(job_id), workstation=ws)})


class JobFinishView(AgentView):
    @extend_schema(request=dict, responses={200: dict}, description="The job's outcome: its one score-log entry.")
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        ws = self.workstation(request)
        outcome = agent.outcome_from_data(_body(request, "outcome", dict, "an object"))
        state = _body(request, "status", str, "done or failed")
        return self.answer(
            lambda: agent.agent_scoring_finish(job_id=str(job_id), outcome=outcome, status=state, workstation=ws)
        )


class PreparationView(AgentView):
    @extend_schema(request=None, responses={200: dict}, description="What preparing the attempt's workspace needs.")
    def post(self, request: Request, pk: int) -> Response:
        ws = self.workstation(request)
        return self.answer(lambda: {"spec": agent.agent_preparation(attempt_id=pk, workstation=ws)})


class PreparedView(AgentView):
    @extend_schema(request=None, responses={200: dict}, description="The workspace is ready.")
    def post(self, request: Request, pk: int) -> Response:
        ws = self.workstation(request)

        def done() -> dict[str, bool]:
            agent.agent_preparation_done(attempt_id=pk, workstation=ws)
            return {"done": True}

        return self.answer(done)


class PreparationFailedView(AgentView):
    @extend_schema(request=dict, responses={200: dict}, description="The workspace could not be prepared, and why.")
    def post(self, request: Request, pk: int) -> Response:
        ws = self.workstation(request)
        reason = _body(request, "reason", str, "text")[:REASON_LIMIT]
        return self.answer(
            lambda: {"recorded": agent.agent_preparation_failed(attempt_id=pk, reason=reason, workstation=ws)}
        )


class RetirementView(AgentView):
    @extend_schema(request=None, responses={200: dict}, description="Whether the attempt's user may be retired.")
    def post(self, request: Request, pk: int) -> Response:
        ws = self.workstation(request)
        return self.answer(lambda: {"retire": agent.agent_retirement(attempt_id=pk, workstation=ws)})


class HeartbeatView(AgentView):
    @extend_schema(request=dict, responses={200: dict}, description="This workstation answers, with its inventory.")
    def post(self, request: Request) -> Response:
        ws = self.workstation(request)
        workstation_id = _body(request, "workstation", int, "this workstation's id")
        inventory = _body(request, "inventory", dict, "an object (workstation.inventory.report)")
        return self.answer(
            lambda: {
                "recorded": agent.agent_heartbeat(workstation_id=workstation_id, inventory=inventory, workstation=ws),
                "at": timezone.now().isoformat(),
            }
        )
