"""App config of leaderboards: its own app inside graders; the label names its models, migrations and
template library, while its tables keep the names they had when graders held them."""

from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "graders.leaderboards"
    label = "leaderboards"
    verbose_name = "leaderboards"
