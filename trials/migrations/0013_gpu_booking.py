"""Bookings hold GPUs, not workstations: a Gpu row per index, and on PostgreSQL an exclusion constraint
per GPU in place of the one per workstation.

The constraint reads the reservation's own `gpus` (through an immutable SQL function that turns the
indices into an integer multirange; no GPU, the whole host, is every index from -1 up), so a GPU's
holders can't drift from the reservation they belong to. SQLite has no exclusion constraints: there
the booking service's check under the workstation's lock (an IMMEDIATE transaction) is the rule.
"""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

HELD_GPUS_FUNCTION = """
CREATE OR REPLACE FUNCTION rebench_held_gpus(gpus jsonb) RETURNS int4multirange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(gpus) = 'array' AND jsonb_array_length(gpus) > 0
    THEN (SELECT range_agg(int4range(g::int, g::int + 1)) FROM jsonb_array_elements_text(gpus) AS g)
    ELSE int4multirange(int4range(-1, NULL)) END
$$
"""

GPU_CONSTRAINT = (
    "ALTER TABLE trials_reservation ADD CONSTRAINT reservation_no_gpu_overlap EXCLUDE USING gist "
    "(workstation_id WITH =, rebench_held_gpus(gpus) WITH &&, tstzrange(starts_at, ends_at, '[)') WITH &&) "
    "WHERE (cancelled_at IS NULL)"
)
WORKSTATION_CONSTRAINT = (
    "ALTER TABLE trials_reservation ADD CONSTRAINT reservation_no_workstation_overlap EXCLUDE USING gist "
    "(workstation_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (cancelled_at IS NULL)"
)


def gpus_of_existing_workstations(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Workstation = apps.get_model("trials", "Workstation")
    Gpu = apps.get_model("trials", "Gpu")
    Gpu.objects.bulk_create(
        [
            Gpu(workstation_id=ws.pk, index=index, model=ws.gpu_model)
            for ws in Workstation.objects.all()
            for index in range(ws.gpu_count)
        ]
    )


def per_gpu_constraint(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(HELD_GPUS_FUNCTION)
    schema_editor.execute("ALTER TABLE trials_reservation DROP CONSTRAINT IF EXISTS reservation_no_workstation_overlap")
    schema_editor.execute(GPU_CONSTRAINT)


def per_workstation_constraint(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE trials_reservation DROP CONSTRAINT IF EXISTS reservation_no_gpu_overlap")
    schema_editor.execute(WORKSTATION_CONSTRAINT)
    schema_editor.execute("DROP FUNCTION IF EXISTS rebench_held_gpus(jsonb)")


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0012_attempt_clock_start"),
    ]

    operations = [
        migrations.CreateModel(
            name="Gpu",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("index", models.PositiveSmallIntegerField()),
                ("model", models.CharField(blank=True, max_length=60)),
                ("uuid", models.CharField(blank=True, max_length=64, verbose_name="UUID")),
                ("memory_mb", models.PositiveIntegerField(blank=True, null=True, verbose_name="memory (MiB)")),
                ("temperature_c", models.SmallIntegerField(blank=True, null=True, verbose_name="temperature (°C)")),
                (
                    "ecc_errors",
                    models.PositiveIntegerField(blank=True, null=True, verbose_name="uncorrected ECC errors"),
                ),
                ("foreign_processes", models.JSONField(blank=True, default=list)),
                ("problem", models.CharField(blank=True, max_length=200)),
                ("reported_at", models.DateTimeField(blank=True, null=True)),
                (
                    "workstation",
                    models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="gpus", to="trials.workstation"),
                ),
            ],
            options={
                "ordering": ["workstation", "index"],
                "constraints": [models.UniqueConstraint(fields=("workstation", "index"), name="gpu_unique_index")],
            },
        ),
        migrations.RunPython(gpus_of_existing_workstations, migrations.RunPython.noop),
        migrations.RunPython(per_gpu_constraint, per_workstation_constraint),
    ]
