from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def existing_attempts_are_ready(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Runs from before the field was there had their workspaces prepared long ago (or never need one:
    # imports and harness runs); only attempts started from now on show the "preparing" state.
    Attempt = apps.get_model("trials", "Attempt")
    Attempt.objects.filter(workspace_ready_at__isnull=True).update(workspace_ready_at=models.F("started_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0010_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="workspace_ready_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(existing_attempts_are_ready, migrations.RunPython.noop),
    ]
