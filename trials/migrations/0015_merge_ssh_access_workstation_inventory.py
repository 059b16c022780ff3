"""Two changes made side by side (experts' SSH access, the workstations' inventory) join here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0014_ssh_access"),
        ("trials", "0014_workstation_inventory"),
    ]

    operations = []
