"""Domain errors raised by services, and how the API turns them into 400/403 answers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ServiceError(Exception):
    """A refused write: the message is for the user, `field` names the input at fault."""

    def __init__(self, message: str, *, field: str = "non_field_errors", code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotAllowed(PermissionDenied):
    """The user may not do this to this object (someone else's attempt, wrong role)."""


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotAllowed):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return exception_handler(exc, context)
