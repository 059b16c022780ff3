"""Every existing run gets the configuration it was scored at.

Attempts on this site were normalised with the environment row's constants, which were the active
configuration's when they were written: they get that configuration, version 1, with those
constants. METR runs are RE-Bench's tasks by definition: they get `full`, with the package's full
constants. Old leaderboard snapshots mixed configurations; they are dropped and recomputed.
"""

from typing import Any

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def _name_and_constants(env: Any, name: str | None = None) -> tuple[str, tuple[float, float] | None]:
    from environments import packages

    package = packages.find_on_disk(env.slug)
    if package is None or not package.configurations:
        return "full", (env.starting_score, env.reference_score)
    if name is None:
        try:
            name = packages.active_configuration_name(env.slug)
        except packages.ConfigurationError:
            name = "full"
        return name, (env.starting_score, env.reference_score)
    config = package.configurations.get(name)
    return name, (config.starting_score, config.reference_score) if config else None


def forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Environment = apps.get_model("environments", "Environment")
    EnvironmentConfiguration = apps.get_model("environments", "EnvironmentConfiguration")
    Attempt = apps.get_model("trials", "Attempt")
    LeaderboardSnapshot = apps.get_model("graders", "LeaderboardSnapshot")

    def configuration(env: Any, name: str, constants: tuple[float, float]) -> Any:
        row = EnvironmentConfiguration.objects.filter(environment=env, name=name).order_by("-version").first()
        if row is None:
            row = EnvironmentConfiguration.objects.create(
                environment=env,
                name=name,
                version=1,
                starting_score=constants[0],
                reference_score=constants[1],
                measured_with="the environment's constants when configurations were introduced",
            )
        return row

    for env in Environment.objects.all():
        runs = Attempt.objects.filter(environment=env, configuration__isnull=True)
        if not runs.exists():
            continue
        metr = runs.filter(source="metr_runs")
        if metr.exists():
            name, constants = _name_and_constants(env, "full")
            if constants is not None:
                metr.update(configuration=configuration(env, name, constants))
        name, constants = _name_and_constants(env)
        assert constants is not None  # without a name: the environment's own constants
        runs.filter(configuration__isnull=True).update(configuration=configuration(env, name, constants))
    LeaderboardSnapshot.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trials", "0008_attempt_provenance"),
        ("graders", "0004_provenance"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
