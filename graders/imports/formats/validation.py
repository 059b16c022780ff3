"""The shared checks: environments and configurations by name, numbers, text, times, and one run's consistency."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from environments.models import Environment, EnvironmentConfiguration
from environments.services import environment_configuration_for
from graders.imports.formats._shared import MAX_LABEL_LENGTH, ImportRefused, RunRecord
from rebench_site.errors import ServiceError


class Environments:
    """Environment rows by slug, looked up once per file; unknown slugs are refused with their line."""

    def __init__(self) -> None:
        self._by_slug: dict[str, Environment] = {e.slug: e for e in Environment.objects.all()}
        self._configurations: dict[tuple[int, str], EnvironmentConfiguration] = {}

    def configuration(self, environment: Environment, name: Any, *, line: int) -> EnvironmentConfiguration:
        """The latest version of configuration `name` of `environment`, looked up once per file."""
        if not isinstance(name, str) or not name.strip():
            raise ImportRefused(
                "is required: small, full or a custom configuration's name.", line=line, field="configuration"
            )
        key = (environment.pk, name.strip())
        if key not in self._configurations:
            try:
                self._configurations[key] = environment_configuration_for(environment=environment, name=key[1])
            except ServiceError as exc:
                raise ImportRefused(exc.message.rstrip("."), line=line, field="configuration") from None
        return self._configurations[key]

    def find(self, *candidates: Any) -> Environment | None:
        for candidate in candidates:
            if isinstance(candidate, str) and candidate.strip() in self._by_slug:
                return self._by_slug[candidate.strip()]
        return None

    def get(self, slug: Any, *, line: int, field: str) -> Environment:
        found = self.find(slug)
        if found is None:
            raise ImportRefused(f"unknown environment {slug!r}.", line=line, field=field)
        return found


def number(value: Any, *, line: int, field: str, allow_missing: bool = False) -> float | None:
    """A finite float; None for null/NaN/"" when `allow_missing` (an invalid score), else refused."""
    if value is None or value == "":
        if allow_missing:
            return None
        raise ImportRefused("is required.", line=line, field=field)
    if isinstance(value, bool):
        raise ImportRefused(f"{value!r} is not a number.", line=line, field=field)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ImportRefused(f"{value!r} is not a number.", line=line, field=field) from None
    else:
        raise ImportRefused(f"{value!r} is not a number.", line=line, field=field)
    if math.isnan(result):
        if allow_missing:
            return None
        raise ImportRefused("is NaN.", line=line, field=field)
    if math.isinf(result):
        raise ImportRefused(f"{value!r} is not a finite number.", line=line, field=field)
    return result


def text(value: Any, *, line: int, field: str, required: bool = False, max_length: int = MAX_LABEL_LENGTH) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str | int):
        raise ImportRefused(f"{value!r} is not text.", line=line, field=field)
    stripped = str(value).strip()
    if required and not stripped:
        raise ImportRefused("is required.", line=line, field=field)
    if len(stripped) > max_length:
        raise ImportRefused(f"is longer than {max_length} characters.", line=line, field=field)
    return stripped


def when(value: Any, *, line: int, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ImportRefused(f"{value!r} is not an ISO 8601 date and time.", line=line, field=field)
    if timezone.is_naive(parsed):
        raise ImportRefused("give the time zone too (e.g. +00:00).", line=line, field=field)
    return parsed


def check_run(record: RunRecord, seen: dict[str, int]) -> RunRecord:
    """What every format must satisfy: one row per run id, a positive run length, entries inside it."""
    if record.external_id in seen:
        raise ImportRefused(
            f"run id {record.external_id!r} appears twice in this file (first on line {seen[record.external_id]}).",
            line=record.line,
            field="run_id",
        )
    seen[record.external_id] = record.line
    if record.time_limit_seconds <= 0:
        raise ImportRefused("the run length must be positive.", line=record.line, field="time_limit")
    for entry in record.entries:
        if entry.elapsed_seconds < 0:
            raise ImportRefused(
                f"elapsed time {entry.elapsed_seconds:g} s is negative.", line=record.line, field="elapsed_seconds"
            )
        if entry.elapsed_seconds > record.time_limit_seconds:
            raise ImportRefused(
                f"elapsed time {entry.elapsed_seconds:g} s is beyond the run length {record.time_limit_seconds:g} s.",
                line=record.line,
                field="elapsed_seconds",
            )
    record.entries.sort(key=lambda e: e.elapsed_seconds)
    return record
