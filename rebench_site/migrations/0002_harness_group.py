"""The `harness` role group: API accounts of agent harnesses."""

from django.db import migrations


def create_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.get_or_create(name="harness")


class Migration(migrations.Migration):
    dependencies = [("rebench_site", "0001_role_groups")]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
