"""Writes for environments: the built-in rows and their configurations."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction

from environments import packages, registry
from environments.models import Environment, EnvironmentConfiguration
from rebench_site.errors import ServiceError


@dataclass(frozen=True)
class DeclaredConfiguration:
    """A configuration as its source states it: the package's metadata, or RE-Bench's table."""

    starting_score: float
    reference_score: float
    measured_with: str = ""
    note: str = ""


@transaction.atomic
def environment_sync_registry() -> list[Environment]:
    """Create or update one row per built-in environment and its configurations; idempotent.

    The row's start and reference scores are the active configuration's (ENVIRONMENT_CONFIGURATION),
    shown where an environment is described; every run is normalised with its own configuration's,
    so changing the active configuration changes no stored or shown number.
    """
    rows = []
    for spec in registry.BUILTIN_ENVIRONMENTS:
        row, _ = Environment.objects.update_or_create(slug=spec.slug, defaults=registry_row(spec))
        environment_configurations_sync(environment=row)
        rows.append(row)
    return rows


def registry_row(spec: registry.EnvironmentSpec) -> dict[str, object]:
    """What the built-in environment's row holds besides its slug: the spec with the active configuration's
    constants (environment_sync_registry writes it; the environments.W001 check compares with it)."""
    fields = asdict(registry.configured(spec))
    del fields["slug"]
    return {**fields, "source": Environment.Source.BUILTIN}


def declared_configurations(environment: Environment) -> dict[str, DeclaredConfiguration]:
    """The configurations the environment's package declares; RE-Bench's numbers as `full` without a package.

    A package without configurations (a Task Standard family) has one scale, its own: `full`, with
    the row's start and reference.
    """
    package = packages.find(environment.slug)
    if package is not None and package.configurations:
        return {
            name: DeclaredConfiguration(c.starting_score, c.reference_score, c.measured_with, c.note)
            for name, c in package.configurations.items()
        }
    spec = registry.BY_SLUG.get(environment.slug)
    if spec is not None:
        return {
            EnvironmentConfiguration.FULL: DeclaredConfiguration(
                spec.starting_score, spec.reference_score, "RE-Bench v1"
            )
        }
    return {
        EnvironmentConfiguration.FULL: DeclaredConfiguration(environment.starting_score, environment.reference_score)
    }


@transaction.atomic
def environment_configurations_sync(*, environment: Environment) -> list[EnvironmentConfiguration]:
    """Make the latest version of each declared configuration match its declaration.

    Changed constants make a new version; the old one stays, with every run that points at it.
    """
    rows = []
    for name, declared in declared_configurations(environment).items():
        latest = _latest(environment, name, lock=True)
        if latest is not None and (latest.starting_score, latest.reference_score) == (
            declared.starting_score,
            declared.reference_score,
        ):
            if (latest.measured_with, latest.note) != (declared.measured_with, declared.note):
                latest.measured_with, latest.note = declared.measured_with, declared.note
                latest.save(update_fields=["measured_with", "note"])
            rows.append(latest)
            continue
        rows.append(
            EnvironmentConfiguration.objects.create(
                environment=environment,
                name=name,
                version=latest.version + 1 if latest else 1,
                starting_score=declared.starting_score,
                reference_score=declared.reference_score,
                measured_with=declared.measured_with,
                note=declared.note,
            )
        )
    return rows


def _latest(environment: Environment, name: str, *, lock: bool = False) -> EnvironmentConfiguration | None:
    rows = EnvironmentConfiguration.objects.filter(environment=environment, name=name)
    if lock:
        rows = rows.select_for_update()
    return rows.order_by("-version").first()


def active_configuration_name(environment: Environment) -> str:
    """The configuration this site's workstations run the environment at."""
    package = packages.find(environment.slug)
    if package is not None and package.configurations:
        return packages.active_configuration_name(environment.slug)
    return EnvironmentConfiguration.FULL


@transaction.atomic
def environment_configuration_for(*, environment: Environment, name: str | None = None) -> EnvironmentConfiguration:
    """The latest version of configuration `name` (default: the active one) of `environment`.

    A declared configuration that has no row yet (an environment created before its package
    declared it) is written first; a name nobody declared or created is refused, naming the field.
    """
    name = name or active_configuration_name(environment)
    row = _latest(environment, name)
    if row is None and name in declared_configurations(environment):
        environment_configurations_sync(environment=environment)
        row = _latest(environment, name)
    if row is None:
        known = sorted(
            set(EnvironmentConfiguration.objects.filter(environment=environment).values_list("name", flat=True))
            | set(declared_configurations(environment))
        )
        raise ServiceError(
            f"{environment.slug} has no configuration {name!r} (it has {', '.join(known)}).", field="configuration"
        )
    return row
