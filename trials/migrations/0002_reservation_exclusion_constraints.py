"""PostgreSQL backs the booking rules with exclusion constraints on the time range.

They live in SQL run only on PostgreSQL (SQLite has no exclusion constraints; there the booking
service's checks under IMMEDIATE transactions are the rule), so the migration state stays the
same on both databases.
"""

from django.apps.registry import Apps
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

CONSTRAINTS = {
    "reservation_no_workstation_overlap": "workstation_id",
    "reservation_no_expert_overlap": "expert_id",
}


def add_constraints(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in CONSTRAINTS.items():
        schema_editor.execute(
            f"ALTER TABLE trials_reservation ADD CONSTRAINT {name} EXCLUDE USING gist "
            f"({column} WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (cancelled_at IS NULL)"
        )


def drop_constraints(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE trials_reservation DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("trials", "0001_initial")]

    operations = [
        BtreeGistExtension(),
        migrations.RunPython(add_constraints, drop_constraints),
    ]
