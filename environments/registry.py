"""The built-in RE-Bench environments, discovered from their packages' manifests (see docs/subsystems/environments.md).

Each environment's package lives in its folder beside this file, and its `metadata.yaml` is the one
description of it: what `environments/packages.py` reads to score it (the scorer, its
configurations with their constants) and, under `environment`, what the site shows and books
(title, direction, resources, visibility; RE-Bench's constants are the `full` configuration's). The
database mirrors this registry (`environment_sync_registry`; a database check says when it
doesn't) so that reservations can point at an environment row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

HIGHER = "higher"
LOWER = "lower"

AGG_MIN = "min"
AGG_MAX = "max"
AGG_LAST = "last"

EIGHT_HOURS = timedelta(hours=8)


@dataclass(frozen=True)
class EnvironmentSpec:
    slug: str
    title: str
    description: str
    raw_score: str
    direction: str
    aggregation: str
    starting_score: float
    reference_score: float
    gpus_min: int
    gpus_max: int
    cpus: int
    memory_gb: int
    gpu_model: str = "H100"
    time_limit: timedelta = EIGHT_HOURS
    scores_visible: bool = True


BUILTIN_DIR = Path(__file__).resolve().parent


class ManifestError(ValueError):
    """A built-in package's `environment` block is missing a field or holds a wrong one; the message says which."""


def _spec(slug: str, meta: dict[str, Any]) -> EnvironmentSpec:
    block = meta["environment"]
    full = (meta.get("configurations") or {}).get("full")
    # RE-Bench's constants: the `full` configuration's, or the block's own for a package of one scale.
    constants = full if full is not None else block
    try:
        return EnvironmentSpec(
            slug=slug,
            title=str(block["title"]),
            description=str(block["description"]),
            raw_score=str(block["raw_score"]),
            direction=_one_of(block["direction"], (HIGHER, LOWER), "direction"),
            aggregation=_one_of(block["aggregation"], (AGG_MIN, AGG_MAX, AGG_LAST), "aggregation"),
            starting_score=float(constants["starting_score"]),
            reference_score=float(constants["reference_score"]),
            gpus_min=int(block["gpus_min"]),
            gpus_max=int(block["gpus_max"]),
            cpus=int(block["cpus"]),
            memory_gb=int(block["memory_gb"]),
            gpu_model=str(block.get("gpu_model", "H100")),
            time_limit=timedelta(hours=float(block.get("time_limit_hours", 8))),
            scores_visible=bool(block.get("scores_visible", True)),
        )
    except KeyError as exc:
        raise ManifestError(f"{slug}/metadata.yaml: `environment` has no {exc.args[0]}") from None
    except (ValueError, TypeError) as exc:  # a word where a number goes, or _one_of's refusal: name the package
        raise ManifestError(f"{slug}/metadata.yaml: {exc}") from None


def _one_of(value: object, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ManifestError(f"environment.{name} is {value!r}; one of {', '.join(allowed)}")
    return str(value)


def discover(base: Path = BUILTIN_DIR) -> tuple[EnvironmentSpec, ...]:
    """Every package folder under `base` whose metadata.yaml has an `environment` block, in its `order`."""
    found: list[tuple[int, EnvironmentSpec]] = []
    for meta_path in sorted(base.glob("*/metadata.yaml")):
        meta = yaml.safe_load(meta_path.read_text()) or {}
        if isinstance(meta.get("environment"), dict):
            slug = str(meta.get("slug") or meta_path.parent.name)
            found.append((int(meta["environment"].get("order", 1000)), _spec(slug, meta)))
    return tuple(spec for _, spec in sorted(found, key=lambda pair: (pair[0], pair[1].slug)))


# The environments that stand for RE-Bench's seven, from their packages' manifests.
BUILTIN_ENVIRONMENTS: tuple[EnvironmentSpec, ...] = discover()

BY_SLUG: dict[str, EnvironmentSpec] = {spec.slug: spec for spec in BUILTIN_ENVIRONMENTS}


def configured(spec: EnvironmentSpec) -> EnvironmentSpec:
    """`spec` with the start/reference raw scores of its package's active configuration (small or full).

    The spec's numbers are RE-Bench's, the `full` ones; a package's `small` configuration declares its own.
    """
    from environments import packages

    package = packages.find(spec.slug)
    if package is None:
        return spec
    start, reference = package.scores(spec.starting_score, spec.reference_score)
    return replace(spec, starting_score=start, reference_score=reference)
