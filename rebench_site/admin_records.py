"""Records in the Django admin: rows the site writes through its services, shown here but never edited.

The audit log, terminal sessions, leaderboard snapshots, classifier scores and the like are what
happened; an admin looks them up, and changes what they record (if at all) on the site's own pages,
which keep the invariants and write the audit log. A subclass allows deleting where that is safe.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

_ModelT = TypeVar("_ModelT", bound=Model)
_ParentT = TypeVar("_ParentT", bound=Model)


class RecordAdmin(admin.ModelAdmin[_ModelT]):
    """View only: no add or change (the change page shows every field read-only); delete only if `deletable`."""

    deletable = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


class RecordInline(admin.TabularInline[_ModelT, _ParentT]):
    """A record's rows inline on its parent's page, read-only, as RecordAdmin."""

    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
