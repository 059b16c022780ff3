"""The `harness` role group: API accounts of agent harnesses."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def create_group(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.get_or_create(name="harness")


class Migration(migrations.Migration):
    dependencies = [("rebench_site", "0001_role_groups")]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
