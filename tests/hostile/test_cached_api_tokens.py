"""A cached API token stops working the moment it is revoked, its user deactivated or its role taken away.

The token → user lookup is answered from a cache (rebench_site/authentication.py). The attacker
holds a token that worked a moment ago and keeps using it after the admin acted; every request
here comes right after the change, well inside the cache's lifetime, so a stale entry would let it
through.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from rebench_site import authentication, roles
from rebench_site.roles import REVIEWER
from review.models import Completion
from review.services import queue_create
from tests import factories

pytestmark = [pytest.mark.django_db]


def forget_cached_tokens() -> None:
    """Drop the token cache's entries, and only those: with Redis, its database holds the channel layer's too."""
    cache = caches[authentication.CACHE_ALIAS]
    if not isinstance(cache, RedisCache):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # its redis client (not in the stubs)
    keys = list(client.scan_iter(match=cache.make_key(authentication.KEY_PREFIX + "*")))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def cache_on(settings):
    settings.API_TOKEN_CACHE_SECONDS = 300  # far longer than any test: only clearing can end an entry
    yield
    forget_cached_tokens()


@pytest.fixture
def queue(admin_user):
    Completion.objects.bulk_create([Completion(prompt="p", text=f"t{i}") for i in range(3)])
    return queue_create(created_by=admin_user, name="q", policy="random", seed=1)


def client_for(token: Token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def next_status(client: APIClient, queue) -> int:
    return client.post(f"/api/review/queues/{queue.pk}/next/").status_code


@pytest.fixture
def attacker():
    user = factories.reviewer(username="mallory")
    return user, Token.objects.create(user=user)


def test_the_cache_answers_a_second_request_without_the_database(attacker, queue, django_assert_num_queries) -> None:
    _user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    # The queue's row and the pick: no token, user or group query.
    with django_assert_num_queries(2):
        assert next_status(client, queue) == 200


def test_a_deleted_token_is_refused_on_the_next_request(attacker, queue) -> None:
    _user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    Token.objects.filter(pk=token.pk).delete()
    assert next_status(client, queue) == 401


def test_a_token_regenerated_by_the_management_command_is_refused(attacker, queue) -> None:
    user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    call_command("drf_create_token", "-r", user.username, stdout=StringIO())
    assert next_status(client, queue) == 401
    assert next_status(client_for(Token.objects.get(user=user)), queue) == 200


def test_a_token_deleted_in_the_django_admin_is_refused(attacker, queue) -> None:
    _user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    admin = Client()  # the admin's forms are posted as forms
    admin.force_login(factories.admin(username="boss", is_superuser=True))
    # DRF's admin lists tokens by user: the delete page of the user's token.
    answer = admin.post(f"/admin/authtoken/tokenproxy/{token.user_id}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Token.objects.filter(key=token.key).exists()
    assert next_status(client, queue) == 401


def test_a_deactivated_user_is_refused(attacker, queue) -> None:
    user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    user.is_active = False
    user.save()
    assert next_status(client, queue) == 401


def test_a_reviewer_whose_role_is_taken_away_is_refused(attacker, queue) -> None:
    user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    user.groups.remove(Group.objects.get(name=REVIEWER))
    assert next_status(client, queue) == 403


def test_removing_the_user_from_the_group_side_is_seen_too(attacker, queue) -> None:
    _user, token = attacker
    client = client_for(token)
    assert next_status(client, queue) == 200
    Group.objects.get(name=REVIEWER).user_set.clear()
    assert next_status(client, queue) == 403


def test_a_revocation_landing_between_the_lookup_and_the_cache_write_still_wins(attacker, queue, monkeypatch) -> None:
    """The request read a valid token, then the token was revoked, then the request filled the cache."""
    _user, token = attacker
    client = client_for(token)
    real = roles.user_roles

    def roles_then_revoke(user):
        found = real(user)
        Token.objects.filter(pk=token.pk).delete()  # after the lookup, before the cache is written
        return found

    monkeypatch.setattr(authentication, "user_roles", roles_then_revoke)
    assert next_status(client, queue) == 200  # this one request was already authenticated
    monkeypatch.setattr(authentication, "user_roles", real)
    assert next_status(client, queue) == 401
