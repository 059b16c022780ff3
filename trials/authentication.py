"""DRF authentication for the `task` command: `Authorization: Attempt <token>`, scoped to one running attempt."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from trials.models import Attempt, AttemptToken

KEYWORD = "Attempt"
ATTEMPT_PATH = re.compile(r"^/api/attempts/(?P<id>\d+)/")


class AttemptTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates as the attempt's expert, only under /api/attempts/<that id>/, only while it runs."""

    def authenticate(self, request: Request) -> tuple[Any, AttemptToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the header as `Authorization: Attempt <token>`.")
        try:
            token = parts[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The attempt token is not valid text.") from exc
        found = (
            AttemptToken.objects.select_related("attempt", "attempt__user")
            .filter(key_hash=AttemptToken.hash_of(token))
            .first()
        )
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown attempt token.")
        match = ATTEMPT_PATH.match(request.path)
        if match is None or int(match["id"]) != found.attempt_id:
            raise exceptions.AuthenticationFailed(
                f"This token only works under /api/attempts/{found.attempt_id}/ (its own attempt)."
            )
        # Here, not at the top: DRF loads this class while rebench_site.errors, which services imports, is loading.
        from trials import services

        attempt = found.attempt
        # Past its deadline the attempt is over even if no worker has ended it: end it, then refuse.
        ended_now = attempt.status == Attempt.Status.RUNNING and services.attempt_end_if_overdue(attempt_id=attempt.pk)
        if ended_now or attempt.status != Attempt.Status.RUNNING or attempt.user is None:
            raise exceptions.AuthenticationFailed("The attempt has ended; its token no longer works.")
        if not attempt.user.is_active:
            raise exceptions.AuthenticationFailed("The attempt's expert account is disabled.")
        AttemptToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        return attempt.user, found

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class AttemptTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the attempt token."""

    target_class = "trials.authentication.AttemptTokenAuthentication"
    name = "attemptToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Attempt <token>`: the `task` command's token, valid under its own attempt while it runs.",
        }
