"""The leaderboards app takes up the two models graders created (graders 0002, 0004, 0005).

State only: the tables exist already, under the names `db_table` keeps (graders_leaderboard...). It
depends on graders 0006, where graders lets them go, so no state ever holds both or neither; a database
operation here would create or drop a table: tests/leaderboards/test_migrations.py checks there is none.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("graders", "0006_leaderboards_leave_for_their_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="LeaderboardRecompute",
                    fields=[
                        ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                        ("dirty_since", models.DateTimeField(blank=True, null=True)),
                        ("last_request_at", models.DateTimeField(blank=True, null=True)),
                        ("scheduled_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "requests",
                            models.PositiveIntegerField(default=0, help_text="Requests since the last recompute."),
                        ),
                    ],
                    options={
                        "db_table": "graders_leaderboardrecompute",
                    },
                ),
                migrations.CreateModel(
                    name="LeaderboardSnapshot",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("computed_at", models.DateTimeField(db_index=True)),
                        ("configuration", models.SlugField(default="full", max_length=60)),
                        (
                            "duration_seconds",
                            models.FloatField(default=0.0, help_text="How long the computation took."),
                        ),
                        (
                            "runs",
                            models.PositiveIntegerField(default=0, help_text="Attempts and agent runs that went in."),
                        ),
                        (
                            "data",
                            models.JSONField(
                                default=dict, help_text="Tables and curves, as the JSON export serves them."
                            ),
                        ),
                        ("runs_table", models.BinaryField(default=b"")),
                    ],
                    options={
                        "db_table": "graders_leaderboardsnapshot",
                        "ordering": ["-computed_at", "-pk"],
                        "get_latest_by": "computed_at",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
