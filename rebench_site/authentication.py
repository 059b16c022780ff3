"""API token authentication that doesn't cost a query per request: the token's user and roles, cached briefly.

DRF's TokenAuthentication reads the token and its user on every request, and the role check reads the
user's groups: two queries before a view starts. Here both come from a shared cache (Redis, the
`api-tokens` alias) for API_TOKEN_CACHE_SECONDS, keyed by a hash of the token (the cache never
holds a usable token). Whatever could make a cached answer wrong clears it at once, in every
process: deleting the token (revoking it, `drf_create_token -r`), saving or deleting its user
(deactivating, a superuser flag), changing the user's groups, renaming or deleting a group.

Clearing is a tombstone, not a delete: the key is set to "ask the database" for the cache's
lifetime, and a request only fills a key that is absent (`cache.add`). So a request that read the
database just before a revocation and writes its answer just after it can't put the revoked token
back: its add finds the tombstone. The tombstone is written when the change is saved and again when
its transaction commits.

Without a shared cache (no REDIS_URL) the default is off: a revocation in one process (a management
command, the worker) couldn't clear another's copy. Changes that bypass model signals
(`User.objects.update(is_active=False)`) are not seen until the entry expires; the site makes none.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import caches
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from rebench_site.roles import user_roles

log = logging.getLogger(__name__)

CACHE_ALIAS = "api-tokens"
# The cache's keys begin so (with Redis, the database is the channel layer's too).
KEY_PREFIX = "rebench-token:"
# "Read the database": a key cleared by a change, for the cache's lifetime (see the module's docstring).
ASK_THE_DATABASE = "ask-the-database"
# The user's fields the cache keeps: all but the password hash, which stays out of Redis. A cached
# user's password is None, so saving it whole fails rather than wiping the hash.
_USER_FIELDS = [f.attname for f in User._meta.concrete_fields if f.attname != "password"]


def _key(token_key: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token_key.encode()).hexdigest()


def _seconds() -> int:
    return int(settings.API_TOKEN_CACHE_SECONDS)


class CachedTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>` as DRF's, answered from the cache when it can be."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        seconds = _seconds()
        if seconds <= 0:
            return super().authenticate_credentials(key)
        cache_key = _key(key)
        try:
            entry = caches[CACHE_ALIAS].get(cache_key)
        except Exception:  # the cache is down: the database still answers
            log.warning("the API token cache can't be read; asking the database", exc_info=True)
            entry = ASK_THE_DATABASE
        if isinstance(entry, dict):
            return _from_entry(key, entry)
        user, token = super().authenticate_credentials(key)
        roles = user_roles(user)
        if entry is None:
            fields = {name: getattr(user, name) for name in _USER_FIELDS}
            try:
                caches[CACHE_ALIAS].add(
                    cache_key, {"user": fields, "roles": sorted(roles), "created": token.created}, seconds
                )
            except Exception:
                log.warning("the API token cache can't be written", exc_info=True)
        return user, token


def _from_entry(key: str, entry: dict[str, Any]) -> tuple[User, Token]:
    user = User(**entry["user"])
    user.password = None  # type: ignore[assignment]  # no hash cached: a whole save fails instead of wiping it
    user._state.adding = False
    user._state.db = "default"
    if not user.is_active:  # never cached so, but the same answer as DRF's if it were
        raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
    user._rebench_roles = frozenset(entry["roles"])  # type: ignore[attr-defined]  # roles.user_roles' per-request cache
    token = Token(key=key, user=user, created=entry["created"])
    token._state.adding = False
    token._state.db = "default"
    return user, token


# --- clearing ------------------------------------------------------------------------------------


def tokens_forget(keys: list[str]) -> None:
    """Make the next request with any of these tokens ask the database (now, and once the change commits)."""
    if not keys or _seconds() <= 0:
        return
    entries = dict.fromkeys(map(_key, keys), ASK_THE_DATABASE)

    def write() -> None:
        try:
            caches[CACHE_ALIAS].set_many(entries, _seconds())
        except Exception:
            log.error("the API token cache can't be cleared: cached tokens live out their %s s", _seconds())

    write()
    transaction.on_commit(write)


def _keys_of_users(user_ids: list[int]) -> list[str]:
    return list(Token.objects.filter(user_id__in=user_ids).values_list("key", flat=True))


def _token_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # A new token's key was never cached; an edited one (given to another user) or a deleted one may be.
    if isinstance(instance, Token) and not created:
        tokens_forget([instance.key])


def _user_changed(sender: Any, instance: User, **kwargs: Any) -> None:
    if _seconds() > 0 and instance.pk is not None:
        tokens_forget(_keys_of_users([instance.pk]))


def _groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kw: Any) -> None:
    if _seconds() <= 0 or action not in {"post_add", "post_remove", "pre_clear", "post_clear"}:
        return
    if reverse:  # group.user_set.add(...): the users are in pk_set (a clear: every member, read before it)
        user_ids = list(pk_set or ()) if action != "pre_clear" else list(instance.user_set.values_list("pk", flat=True))
    else:
        user_ids = [instance.pk]
    tokens_forget(_keys_of_users(user_ids))


def _group_changed(sender: Any, instance: Group, **kwargs: Any) -> None:
    # A renamed or deleted group changes its members' roles (pre_delete: while they are still members).
    if _seconds() > 0 and instance.pk is not None:
        tokens_forget(_keys_of_users(list(instance.user_set.values_list("pk", flat=True))))


def connect_signals() -> None:
    """Called by the app's ready()."""
    uid = "rebench_site.authentication"
    # No sender for tokens: the admin deletes them as TokenProxy, whose signals name the proxy.
    post_save.connect(_token_changed, dispatch_uid=f"{uid}.token_saved")
    post_delete.connect(_token_changed, dispatch_uid=f"{uid}.token_deleted")
    post_save.connect(_user_changed, sender=User, dispatch_uid=f"{uid}.user_saved")
    pre_delete.connect(_user_changed, sender=User, dispatch_uid=f"{uid}.user_deleted")
    m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid=f"{uid}.groups")
    post_save.connect(_group_changed, sender=Group, dispatch_uid=f"{uid}.group_saved")
    pre_delete.connect(_group_changed, sender=Group, dispatch_uid=f"{uid}.group_deleted")
