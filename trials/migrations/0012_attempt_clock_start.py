from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def existing_clocks_started_with_their_attempts(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Attempts from before preparing came off the clock counted from their start, and keep doing so:
    # a running one's elapsed time and deadline don't move under its expert.
    Attempt = apps.get_model("trials", "Attempt")
    Attempt.objects.filter(clock_started_at__isnull=True).update(clock_started_at=models.F("started_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0011_attempt_workspace_ready"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="clock_started_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the clock started: the environment ready, its starting solution scored.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="attempt",
            name="preparation_error",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="attempt",
            name="preparation_failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="attempt",
            name="started_at",
            field=models.DateTimeField(help_text="When the participant started it (for this site's attempts, Start)."),
        ),
        migrations.RunPython(existing_clocks_started_with_their_attempts, migrations.RunPython.noop),
    ]
