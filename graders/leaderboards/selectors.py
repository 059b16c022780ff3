"""Reads for leaderboards: runs and score logs in three queries, and the latest snapshot for pages and the API."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import QuerySet

from environments.models import CONFIGURATION_NAME, Environment, EnvironmentConfiguration
from environments.registry import BUILTIN_ENVIRONMENTS
from graders.leaderboards.method import HUMANS, EnvironmentInfo, GroupInfo, LeaderboardInput
from graders.leaderboards.models import LeaderboardSnapshot
from graders.models import ScoreLogEntry
from rebench_site import roles
from rebench_site.errors import ServiceError
from trials.models import Attempt

FULL = EnvironmentConfiguration.FULL


def _agent_key(name: str, model: str, scaffold: str) -> str:
    return "agent:" + "|".join((name, model, scaffold))


def _agent_label(name: str, model: str, scaffold: str) -> str:
    label = name or "agent"
    if model and model != name:
        label += f" / {model}"
    if scaffold:
        label += f" ({scaffold})"
    return label


def leaderboard_configurations() -> list[str]:
    """The configurations with runs, `full` (RE-Bench's scale) first and always: one leaderboard each."""
    names = set(
        Attempt.objects.filter(configuration__isnull=False)
        .values_list("configuration__name", flat=True)
        .distinct()
        .order_by()
    )
    return [FULL, *sorted(names - {FULL})]


def leaderboard_inputs(configuration: str = FULL) -> LeaderboardInput:
    """Every ended attempt (human or agent) of one configuration with its score log, as columns for
    method.leaderboard_compute; each run carries its own configuration version's constants.

    Running attempts are left out: their score at a budget beyond the time they have worked is not known yet.
    """
    environments = list(Environment.objects.order_by("slug"))
    env_index = {env.pk: i for i, env in enumerate(environments)}
    # What each environment's page says it normalises by: the configuration's latest version.
    latest = {
        c.environment_id: c
        for c in EnvironmentConfiguration.objects.filter(name=configuration).order_by("environment_id", "version")
    }
    attempts = list(
        # A run without a length can't be placed against any budget (k = B/L); imports and the API refuse them anyway.
        Attempt.objects.filter(
            status=Attempt.Status.ENDED,
            time_limit__gt=timedelta(0),
            excluded_reason="",
            configuration__name=configuration,
        )
        .order_by("pk")
        .values_list(
            "pk",
            "environment_id",
            "participant_kind",
            "user_id",
            "user__username",
            "participant_label",
            "agent_name",
            "agent_model",
            "agent_scaffold",
            "time_limit",
            "configuration__starting_score",
            "configuration__reference_score",
        )
    )
    groups: list[GroupInfo] = []
    group_index: dict[str, int] = {}
    seen: dict[tuple[str, str, str, str], int] = {}  # by the raw columns: the same agent over thousands of runs

    def group_of(kind: str, name: str, model: str, scaffold: str) -> int:
        found = seen.get((kind, name, model, scaffold))
        if found is None:
            found = seen[kind, name, model, scaffold] = _group_index(kind, name, model, scaffold)
        return found

    def _group_index(kind: str, name: str, model: str, scaffold: str) -> int:
        if kind == Attempt.ParticipantKind.HUMAN:
            key, info = HUMANS, GroupInfo(key=HUMANS, kind="human", label="Human experts")
        else:
            key = _agent_key(name, model, scaffold)
            info = GroupInfo(
                key=key,
                kind="agent",
                label=_agent_label(name, model, scaffold),
                agent_name=name,
                agent_model=model,
                agent_scaffold=scaffold,
            )
        if key not in group_index:
            group_index[key] = len(groups)
            groups.append(info)
        return group_index[key]

    run_index: dict[int, int] = {}
    run_env: list[int] = []
    run_group: list[int] = []
    run_length: list[float] = []
    run_id: list[Any] = []
    run_participant: list[str] = []
    run_user: list[int | None] = []
    run_start: list[float] = []
    run_reference: list[float] = []
    for pk, env_id, kind, user_id, username, label, name, model, scaffold, limit, start, reference in attempts:
        run_index[pk] = len(run_id)
        run_start.append(start)
        run_reference.append(reference)
        run_env.append(env_index[env_id])
        run_group.append(group_of(kind, name, model, scaffold))
        run_length.append(limit.total_seconds())
        run_id.append(pk)
        group = run_group[-1]
        run_participant.append(label or username or (groups[group].label if kind != "human" else "?"))
        run_user.append(user_id)
    # Log order (scored_at, pk) is what "last" aggregates by; one query for every entry of every run.
    entries = (
        ScoreLogEntry.objects.filter(attempt__status=Attempt.Status.ENDED, attempt__configuration__name=configuration)
        .order_by("attempt_id", "scored_at", "pk")
        .values_list("attempt_id", "elapsed_seconds", "score")
    )
    entry_run, entry_elapsed, entry_raw = [], [], []
    for attempt_id, elapsed, score in _fetch_all(entries):
        index = run_index.get(attempt_id)
        if index is None:  # ended between the two queries; it joins the next recompute
            continue
        entry_run.append(index)
        entry_elapsed.append(elapsed)
        entry_raw.append(np.nan if score is None else score)
    return LeaderboardInput(
        overall_environments=[spec.slug for spec in BUILTIN_ENVIRONMENTS],
        environments=[
            EnvironmentInfo(
                slug=env.slug,
                title=env.title,
                starting_score=latest[env.pk].starting_score if env.pk in latest else env.starting_score,
                reference_score=latest[env.pk].reference_score if env.pk in latest else env.reference_score,
                aggregation=env.aggregation,
                configuration=latest[env.pk].label if env.pk in latest else "",
            )
            for env in environments
        ],
        configuration=configuration,
        run_start=np.array(run_start, dtype=float),
        run_reference=np.array(run_reference, dtype=float),
        groups=groups,
        run_env=np.array(run_env, dtype=np.int64),
        run_group=np.array(run_group, dtype=np.int64),
        run_length=np.array(run_length, dtype=float),
        run_id=run_id,
        run_participant=run_participant,
        run_user=run_user,
        entry_run=np.array(entry_run, dtype=np.int64),
        entry_elapsed=np.array(entry_elapsed, dtype=float),
        entry_raw=np.array(entry_raw, dtype=float),
    )


def _fetch_all(rows: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """A values_list of plain columns (ints, floats) in one fetch: the ORM's chunks of 100 rows and its
    per-row converters cost a third of a second on 240,000 entries, and these columns need none."""
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched: list[tuple[Any, ...]] = cursor.fetchall()
        return fetched


def leaderboard_latest(configuration: str = FULL, *, with_runs: bool = False) -> LeaderboardSnapshot | None:
    """The configuration's latest snapshot; its per-run table only `with_runs` (it is most of its size)."""
    snapshots = LeaderboardSnapshot.objects.filter(configuration=configuration)
    if not with_runs:
        snapshots = snapshots.defer("runs_table")
    return snapshots.order_by("-computed_at", "-pk").first()


def runs_table_pack(columns: list[str], runs: list[dict[str, Any]]) -> bytes:
    """The per-run rows as LeaderboardSnapshot.runs_table stores them: columnar JSON, zlib-compressed.

    Every row is built by one dict literal (method._tables), so its values come in the columns' order.
    """
    table = {"columns": columns, "rows": [list(row.values()) for row in runs]}
    return zlib.compress(json.dumps(table, separators=(",", ":")).encode(), 1)


def snapshot_data(snapshot: LeaderboardSnapshot) -> dict[str, Any]:
    """The snapshot's tables and curves, with `runs` as rows when its per-run table was loaded."""
    data = dict(snapshot.data)
    if "runs_table" not in snapshot.get_deferred_fields() and snapshot.runs_table:
        table = json.loads(zlib.decompress(bytes(snapshot.runs_table)))
        columns = table["columns"]
        data["runs"] = [dict(zip(columns, row, strict=True)) for row in table["rows"]]
    return data


def configuration_param(value: Any) -> str:
    """A configuration name as a page or the API takes it (`?configuration=`); refused naming the field."""
    if not isinstance(value, str) or not CONFIGURATION_NAME.fullmatch(value):
        raise ServiceError(
            "Name a configuration: full (RE-Bench's scale), small or a custom configuration's name.",
            field="configuration",
        )
    return value


def snapshot_configurations() -> list[str]:
    """The configurations that have a computed leaderboard, `full` first: the page's selector."""
    names = set(LeaderboardSnapshot.objects.values_list("configuration", flat=True).distinct().order_by())
    return [FULL, *sorted(names - {FULL})]


def snapshot_visible_to(snapshot: LeaderboardSnapshot, user: User | AnonymousUser) -> dict[str, Any]:
    """The snapshot's data as `user` may see it: all of it for an admin; an expert's own rows and nothing else."""
    data = snapshot_data(snapshot)
    if roles.is_admin(user):
        return data
    mine = user.pk if user.is_authenticated else None
    hidden = ("curves", "humans", "agents", "runs", "groups", "environments")
    # Their own rows of a hidden-score environment reach experts only once an admin releases its scores.
    withheld = set(
        Environment.objects.filter(scores_visible=False, scores_released=False).values_list("slug", flat=True)
    )

    def own(row: dict[str, Any]) -> bool:
        return mine is not None and row.get("user_id") == mine and row.get("environment") not in withheld

    return {
        **{k: v for k, v in data.items() if k not in hidden},
        # Which agents are compared, and on what, is for admins too.
        "environments": [{"slug": e["slug"], "title": e["title"]} for e in data.get("environments", [])],
        "groups": [g for g in data.get("groups", []) if g.get("kind") == "human"],
        "curves": [],
        "agents": [],
        "humans": [row for row in data.get("humans", []) if own(row)],
        "runs": [row for row in data.get("runs", []) if own(row)],
    }


TABLES = ("curves", "humans", "agents", "runs")
CURVE_COLUMNS = (
    "environment",
    "group",
    "group_label",
    "kind",
    "run_length_hours",
    "runs",
    "budget_hours",
    "k",
    "value",
    "ci_low",
    "ci_high",
    "note",
)


def table_rows(data: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """One export table as flat rows; curves become one row per (curve, budget)."""
    if table not in TABLES:
        raise KeyError(table)
    if table != "curves":
        return list(data.get(table, []))
    rows: list[dict[str, Any]] = []
    for curve in data.get("curves", []):
        base = {k: curve[k] for k in ("environment", "group", "group_label", "kind", "run_length_hours", "runs")}
        rows.extend({**base, **point} for point in curve["points"])
    return rows


def highlight_rows(curves: list[dict[str, Any]], hours: list[float]) -> list[dict[str, Any]]:
    """Each curve's points at the highlighted budgets (2, 8, 32 h), for the table beneath a chart."""
    rows = []
    for curve in curves:
        by_budget = {p["budget_hours"]: p for p in curve["points"]}
        rows.append({"curve": curve, "points": [by_budget.get(h) for h in hours], "lengths": run_counts_note(curve)})
    return rows


def run_counts_note(curve: dict[str, Any]) -> str:
    """How the curve read runs that aren't exactly its run length; "" when all are (or for older snapshots)."""
    counts = curve.get("run_counts") or {}
    if not counts or counts.get("at_length", 0) == curve.get("runs"):
        return ""
    parts = [f"{counts['at_length']} of the run length"] if counts.get("at_length") else []
    if counts.get("shorter"):
        parts.append(f"{counts['shorter']} shorter (scored at their end)")
    if counts.get("overran"):
        parts.append(f"{counts['overran']} overran within the grace (one run each, scored at their end)")
    if counts.get("truncated"):
        parts.append(f"{counts['truncated']} longer (read at the run length)")
    return "; ".join(parts)


def environment_page(data: dict[str, Any], slug: str) -> dict[str, Any] | None:
    """What the per-environment page shows, from a snapshot's data; None for an environment not in it."""
    environment = next((e for e in data.get("environments", []) if e["slug"] == slug), None)
    if environment is None:
        return None
    curves = [c for c in data.get("curves", []) if c["environment"] == slug]
    return {
        "environment": environment,
        "curves": curves,
        "humans": [h for h in data.get("humans", []) if h["environment"] == slug],
        "agents": [a for a in data.get("agents", []) if a["environment"] == slug],
        "highlights": highlight_rows(curves, data.get("highlight_hours", [])),
    }


def excluded_runs() -> QuerySet[Attempt]:
    """Runs an admin left out of the leaderboards, with who and why (read live, not from a snapshot)."""
    return (
        Attempt.objects.exclude(excluded_reason="")
        .select_related("environment", "user", "excluded_by")
        .order_by("-excluded_at", "-pk")
    )


def overview_page(data: dict[str, Any]) -> dict[str, Any]:
    """Groups with runs in every overall environment are compared in one table; the others apart,
    marked incomplete with what they miss (a mean over fewer environments is another number)."""
    overall = [c for c in data.get("curves", []) if c["environment"] == "overall"]
    complete = [c for c in overall if c.get("complete", True)]
    incomplete = [c for c in overall if not c.get("complete", True)]
    hours = data.get("highlight_hours", [])
    return {
        "environments": data.get("environments", []),
        "curves": data.get("curves", []),
        "overall": overall,
        "highlights": highlight_rows(complete, hours),
        "incomplete_highlights": highlight_rows(incomplete, hours),
    }
