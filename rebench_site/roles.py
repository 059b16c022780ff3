"""The roles (expert, reviewer, admin, and harness for agent harnesses) as Django groups, and the checks views use."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

EXPERT = "expert"
REVIEWER = "reviewer"
ADMIN = "admin"
# Agent harnesses: API-only accounts that enter agent runs and their score logs.
HARNESS = "harness"
ROLES = (EXPERT, REVIEWER, ADMIN, HARNESS)

AnyUser = AbstractBaseUser | AnonymousUser


def user_roles(user: AnyUser) -> frozenset[str]:
    """Roles of a user, cached on the user object for the request."""
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_rebench_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        if user.is_superuser:  # type: ignore[attr-defined]
            names.add(ADMIN)
        cached = frozenset(names & set(ROLES))
        user._rebench_roles = cached  # type: ignore[union-attr]
    return cached


def has_role(user: AnyUser, role: str) -> bool:
    return role in user_roles(user)


def is_admin(user: AnyUser) -> bool:
    return has_role(user, ADMIN)


ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def role_required(*roles: str) -> Callable[[ViewFunc], ViewFunc]:
    """Anonymous users go to the login page; logged-in users without one of `roles` get 403."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not user_roles(request.user) & set(roles):
                raise PermissionDenied(f"This page is for: {', '.join(roles)}.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)  # type: ignore[return-value]

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
