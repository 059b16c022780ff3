"""Fixtures for the REST API tests: API clients signed in as a given user, and a user with no role."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from tests import factories

ClientFor = Callable[[AbstractBaseUser | None], APIClient]


@pytest.fixture
def api() -> ClientFor:
    """`api(user)` is a client authenticated as `user`; `api(None)` is anonymous."""

    def make(user: AbstractBaseUser | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def no_role_user(db):  # type: ignore[no-untyped-def]
    return factories.UserFactory(username="nobody")
