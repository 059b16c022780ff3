"""What the heartbeat reports of a workstation (disk space, notes) and whose word a GPU's problem is."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def problems_so_far_are_admins(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Before this the heartbeat set no problems: every one there is an admin's, and stays until one clears it.
    apps.get_model("trials", "Gpu").objects.exclude(problem="").update(problem_set_by_admin=True)


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0013_gpu_booking"),
    ]

    operations = [
        migrations.AddField(
            model_name="gpu",
            name="problem_set_by_admin",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="workstation",
            name="disk_free_bytes",
            field=models.BigIntegerField(blank=True, null=True, verbose_name="disk free (bytes)"),
        ),
        migrations.AddField(
            model_name="workstation",
            name="disk_total_bytes",
            field=models.BigIntegerField(blank=True, null=True, verbose_name="disk size (bytes)"),
        ),
        migrations.AddField(
            model_name="workstation",
            name="inventory_notes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(problems_so_far_are_admins, migrations.RunPython.noop),
    ]
