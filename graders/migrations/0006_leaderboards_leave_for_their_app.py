"""LeaderboardSnapshot and LeaderboardRecompute now belong to the leaderboards app (graders.leaderboards).

State only: graders forgets the two models here and leaderboards 0001_initial takes them up, with
`db_table` naming the tables graders created, so the tables and their rows stay exactly as they were.
A database operation here would drop them: tests/leaderboards/test_migrations.py checks there is none.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("graders", "0005_snapshot_runs_table"),
        # Its backfill reads graders.LeaderboardSnapshot from the historical models: it must run first.
        ("trials", "0009_backfill_configurations"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="LeaderboardRecompute"),
                migrations.DeleteModel(name="LeaderboardSnapshot"),
            ],
            database_operations=[],
        ),
    ]
