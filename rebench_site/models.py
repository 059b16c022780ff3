"""Per-user settings of the site itself (the apps keep their own models)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Profile(models.Model):
    """A user's own settings; a user without a row has the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # An IANA zone name (rebench_site.time_zones.allowed_zones); blank: the zone the browser reports.
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user}'s profile"
