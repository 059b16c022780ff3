"""The roles (expert, reviewer, admin, and harness for agent harnesses) as Django groups, and the checks views use."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

EXPERT = "expert"
REVIEWER = "reviewer"
ADMIN = "admin"
# Agent harnesses: API-only accounts that enter agent runs and their score logs.
HARNESS = "harness"
ROLES = (EXPERT, REVIEWER, ADMIN, HARNESS)

# A request's user: AUTH_USER_MODEL is Django's own User, or AnonymousUser before signing in.
AnyUser = User | AnonymousUser


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind `role_required` or `login_required`, whose user has signed in.

    An annotation only: Django passes its HttpRequest, and the decorator is what turns anonymous users away.
    """

    user: User


class AuthenticatedRequest(Request):
    """The DRF request of a view whose permissions refuse anonymous users (IsAuthenticated, HasRole)."""

    user: User


def user_roles(user: AnyUser) -> frozenset[str]:
    """Roles of a user, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_rebench_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            names.add(ADMIN)
        cached = frozenset(names & set(ROLES))
        user._rebench_roles = cached  # type: ignore[attr-defined]  # a cache for this request, on the user object
    return cached


def has_role(user: AnyUser, role: str) -> bool:
    return role in user_roles(user)


def is_admin(user: AnyUser) -> bool:
    return has_role(user, ADMIN)


ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def role_required(*roles: str) -> Callable[[ViewFunc], ViewFunc]:
    """Anonymous users go to the login page; logged-in users without one of `roles` get 403."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not user_roles(request.user) & set(roles):
                raise PermissionDenied(f"This page is for: {', '.join(roles)}.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]  # the view, wrapped twice: its signature is kept

    return decorator


class HasRole(BasePermission):
    """DRF permission: `HasRole.of("admin")` builds a class allowing only those roles."""

    roles: tuple[str, ...] = ()

    @classmethod
    def of(cls, *roles: str) -> type[HasRole]:
        return type(f"HasRole_{'_'.join(roles)}", (cls,), {"roles": roles})

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(user_roles(request.user) & set(self.roles))


def roles_context(request: HttpRequest) -> dict[str, Any]:
    roles = user_roles(request.user)
    return {
        "is_expert": EXPERT in roles,
        "is_reviewer": REVIEWER in roles,
        "is_admin_role": ADMIN in roles,
    }
