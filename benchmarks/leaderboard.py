"""Leaderboard computation: graders.leaderboards.method against a straightforward pandas implementation.

7 environments × 500 human attempts (mostly 8 h; some overran by minutes, some 4 h, a few of three days),
5,000 agent runs (four agents, runs of 30 min to 8 h) with score
logs of 20 entries each (about 5 % invalid), 1,000 bootstrap resamples: both compute every curve (per
environment and overall, 29 budgets from 30 min to 64 h, with 95 % intervals) and the tables; the script
checks that they agree to 1e-9 and prints both times and the ratio. Run it with
`.venv/bin/python benchmarks/leaderboard.py [--resamples N] [--repeat N]`.

Then, through the database (a throwaway test database of DATABASE_URL's server, or SQLite without
one): 80,000 runs in our JSONL format (`--imports N`, 0 skips) imported by the import service in a
fresh process — its wall time and peak memory (the process's peak RSS, minus what it held before the
import began), beside the floor of merely parsing the same file with `json` — then one leaderboard
recompute of those runs (`leaderboard_snapshot_create`: the selector's queries and the computation).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from functools import cache
from pathlib import Path
from typing import Any

# Single-threaded BLAS for both sides, set before numpy loads: on a small shared machine OpenBLAS's
# threads mostly wait for each other, and the comparison should not hinge on that.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from environments.registry import BUILTIN_ENVIRONMENTS
from graders.leaderboards import method
from graders.leaderboards.method import HOUR, EnvironmentInfo, GroupInfo, LeaderboardInput

HUMANS_PER_ENV = 500
GRACE = 3600.0  # LEADERBOARD_OVERRUN_GRACE_MINUTES' default
AGENT_RUNS = 5000
ENTRIES = 20
AGENTS = [  # name, model, scaffold, run length in hours
    ("modular", "gpt-4o", "modular", 8.0),
    ("triframe", "claude-3-5-sonnet", "triframe", 2.0),
    ("aide", "o1-preview", "aide", 0.5),
    ("triframe", "claude-3-7-sonnet", "triframe", 8.0),
]


def synthetic(seed: int = 0) -> LeaderboardInput:
    rng = np.random.default_rng(seed)
    envs = [
        EnvironmentInfo(s.slug, s.title, s.starting_score, s.reference_score, s.aggregation)
        for s in BUILTIN_ENVIRONMENTS
    ]
    groups = [GroupInfo(key=method.HUMANS, kind="human", label="Human experts")]
    groups += [
        GroupInfo(
            key=f"agent:{n}|{m}|{s}", kind="agent", label=f"{n} / {m}", agent_name=n, agent_model=m, agent_scaffold=s
        )
        for n, m, s, _ in AGENTS
    ]
    run_env = np.concatenate([np.repeat(np.arange(len(envs)), HUMANS_PER_ENV), rng.integers(0, len(envs), AGENT_RUNS)])
    agent_of = rng.integers(0, len(AGENTS), AGENT_RUNS)
    run_group = np.concatenate([np.zeros(len(envs) * HUMANS_PER_ENV, dtype=np.int64), agent_of + 1])
    # Humans' runs as RE-Bench's tables have them: mostly 8 h, some overran by minutes, some 4 h, a few multi-day.
    human_lengths = rng.choice(
        np.array([8.0, 8 + 10 / 60, 8 + 50 / 60, 4.0, 72.0]) * HOUR,
        size=len(envs) * HUMANS_PER_ENV,
        p=[0.78, 0.1, 0.04, 0.05, 0.03],
    )
    run_length = np.concatenate([human_lengths, np.array([AGENTS[a][3] * HOUR for a in agent_of])])
    n = run_env.size
    # Each run: 20 scoring times within its length, a noisy improving score, some NaN (timeouts, crashes).
    elapsed = np.sort(rng.random((n, ENTRIES)), axis=1) * run_length[:, None]
    skill = rng.beta(2, 3, size=n)[:, None]
    progress = skill * np.linspace(-0.2, 1.4, ENTRIES)[None, :] + rng.normal(0, 0.15, size=(n, ENTRIES))
    start = np.array([e.starting_score for e in envs])[run_env][:, None]
    reference = np.array([e.reference_score for e in envs])[run_env][:, None]
    raw = start + progress * (reference - start)
    raw[rng.random((n, ENTRIES)) < 0.05] = np.nan
    participants = [f"expert-{i % 61}" for i in range(len(envs) * HUMANS_PER_ENV)]
    participants += [groups[g].label for g in run_group[len(envs) * HUMANS_PER_ENV :]]
    return LeaderboardInput(
        environments=envs,
        groups=groups,
        run_env=run_env.astype(np.int64),
        run_group=run_group.astype(np.int64),
        run_length=run_length,
        run_id=list(range(n)),
        run_participant=participants,
        run_user=[None] * n,
        entry_run=np.repeat(np.arange(n, dtype=np.int64), ENTRIES),
        entry_elapsed=elapsed.ravel(),
        entry_raw=raw.ravel(),
    )


# --- the peer: the same definitions, written the obvious way with pandas ---------------------------------


@cache
def _weights(n: int, k: int) -> pd.Series:
    """P(max = s_(i)) = C(i−1, k−1)/C(n, k), from exact integers."""
    total = math.comb(n, k)
    return pd.Series([math.comb(i - 1, k - 1) / total for i in range(1, n + 1)])


def _best_of_k(scores: pd.Series, k: int) -> float | None:
    if len(scores) < k:
        return None
    ordered = scores.sort_values(kind="stable").reset_index(drop=True)
    return float((ordered * _weights(len(ordered), k)).sum())


def _k(budget: float, length: float) -> int:
    return 1 if budget <= length * (1 + 1e-9) else math.floor(budget / length + 1e-9)


def pandas_peer(data: LeaderboardInput, resamples: int, seed: int) -> dict[str, Any]:
    runs = pd.DataFrame(
        {
            "run": np.arange(data.run_count),
            "env": data.run_env,
            "group": data.run_group,
            "length": data.run_length,
            "participant": data.run_participant,
        }
    )
    entries = pd.DataFrame(
        {
            "run": data.entry_run,
            "elapsed": data.entry_elapsed,
            "raw": data.entry_raw,
            "order": np.arange(data.entry_run.size),
        }
    )
    entries = entries.merge(runs[["run", "env"]], on="run").dropna(subset=["raw"])
    entries = entries.sort_values(["run", "elapsed", "order"])
    parts = []
    for e, env in enumerate(data.environments):
        sub = entries[entries["env"] == e].copy()
        if env.aggregation == "min":
            sub["agg"] = sub.groupby("run")["raw"].cummin()
        elif env.aggregation == "max":
            sub["agg"] = sub.groupby("run")["raw"].cummax()
        else:
            sub["agg"] = sub["raw"]
        sub["value"] = ((sub["agg"] - env.starting_score) / (env.reference_score - env.starting_score)).clip(lower=0)
        parts.append(sub)
    entries = pd.concat(parts)
    budgets = [h * HOUR for h in method.BUDGET_HOURS]
    times = sorted(set(budgets) | set(runs["length"].unique().tolist()) | {math.inf})
    score = pd.DataFrame(index=runs["run"])
    for t in times:
        score[t] = entries[entries["elapsed"] <= t].groupby("run")["value"].last().reindex(runs["run"]).fillna(0.0)

    curves: dict[tuple[str, str], list[tuple[float | None, float | None, float | None]]] = {}
    replicates: dict[tuple[int, int], dict[int, np.ndarray]] = {}
    for e, env in enumerate(data.environments):
        for g, group in enumerate(data.groups):
            mine = runs[(runs["env"] == e) & (runs["group"] == g)]
            if mine.empty:
                continue
            lengths = mine["length"].value_counts()
            length = float(lengths[lengths == lengths.max()].index.max())
            # s_r, a run's score as one whole run: at its own end if it overran L by at most the grace,
            # else at L (a shorter run has nothing after its end; a longer one is read at L).
            overran = (mine["length"] > length * (1 + 1e-9)) & (mine["length"] <= length + GRACE + length * 1e-9)
            end = mine["length"].where(overran, length).to_numpy()
            s = score.loc[mine["run"]].reset_index(drop=True)
            s["whole"] = [s.at[i, t] for i, t in enumerate(end)]
            s = s.iloc[s["whole"].argsort(kind="stable")].reset_index(drop=True)
            n = len(s)
            rng = np.random.default_rng(
                np.random.SeedSequence([seed, zlib.crc32(env.slug.encode()), zlib.crc32(group.key.encode())])
            )
            draws = rng.integers(0, n, size=(resamples, n))
            # B ≤ L: each run's score at B, averaged. B > L: k = ⌊B/L⌋ whole runs, best of k over s_r (k = 1: its mean).
            ks = [_k(b, length) for b in budgets]
            column = [b if b <= length * (1 + 1e-9) else "whole" for b in budgets]
            within = sorted({c for c, k in zip(column, ks, strict=True) if k == 1}, key=str)
            beyond = sorted({k for k in ks if 1 < k <= n})
            points = [s[c].mean() if k == 1 else _best_of_k(s["whole"], k) for c, k in zip(column, ks, strict=True)]
            # Each replicate: one resample of the runs, then every budget's value from it.
            means, bests = [], []
            for r in range(resamples):
                sample = s.iloc[draws[r]]
                means.append(sample[within].mean())
                bests.append({k: _best_of_k(sample["whole"], k) for k in beyond})
            means_df = pd.DataFrame(means)
            boot = {}
            for j, (c, k) in enumerate(zip(column, ks, strict=True)):
                if points[j] is None:
                    continue
                boot[j] = means_df[c].to_numpy() if k == 1 else np.array([row[k] for row in bests])
            replicates[(e, g)] = boot
            curves[(env.slug, group.key)] = [
                (p, *(pd.Series(boot[j]).quantile([0.025, 0.975]).tolist() if j in boot else (None, None)))
                for j, p in enumerate(points)
            ]
    for g, group in enumerate(data.groups):
        envs = [e for e in range(len(data.environments)) if (e, g) in replicates]
        if not envs:
            continue
        overall: list[tuple[float | None, float | None, float | None]] = []
        for j in range(len(budgets)):
            if any(j not in replicates[(e, g)] for e in envs):
                overall.append((None, None, None))
                continue
            value = float(np.mean([curves[(data.environments[e].slug, group.key)][j][0] for e in envs]))
            mean_boot = pd.concat([pd.Series(replicates[(e, g)][j]) for e in envs], axis=1).mean(axis=1)
            overall.append((value, *mean_boot.quantile([0.025, 0.975]).tolist()))
        curves[("overall", group.key)] = overall

    runs["final"] = score[math.inf].to_numpy()
    runs["at_2h"] = score[2 * HOUR].to_numpy()
    runs["at_8h"] = score[8 * HOUR].to_numpy()
    humans = runs[runs["group"] == 0].groupby(["env", "participant"])[["final", "at_2h", "at_8h"]].max()
    agents = runs[runs["group"] > 0].groupby(["env", "group"])["final"].agg(["mean", "max", "count"])
    return {"curves": curves, "humans": humans, "agents": agents}


# --- agreement and timing ------------------------------------------------------------------------------------


def _close(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def compare(
    ours: dict[str, Any], peer: dict[str, Any], data: LeaderboardInput, tol: float = 1e-9
) -> tuple[int, int, float]:
    """(point values compared, interval ends compared, largest difference); raises on disagreement."""
    points = ends = 0
    worst = 0.0
    for curve in ours["curves"]:
        theirs = peer["curves"][(curve["environment"], curve["group"])]
        for p, (value, low, high) in zip(curve["points"], theirs, strict=True):
            if not _close(p["value"], value, tol):
                raise AssertionError(
                    f"{curve['environment']} {curve['group']} {p['budget_hours']} h: {p['value']} ≠ {value}"
                )
            for mine, other in ((p["ci_low"], low), (p["ci_high"], high)):
                if not _close(mine, other, tol):
                    raise AssertionError(f"interval {curve['environment']} {curve['group']}: {mine} ≠ {other}")
                ends += mine is not None
            if p["value"] is not None:
                points += 1
                worst = max(worst, abs(p["value"] - value))
    slug_index = {env.slug: e for e, env in enumerate(data.environments)}
    for row in ours["humans"]:
        theirs = peer["humans"].loc[(slug_index[row["environment"]], row["participant"])]
        for col in ("at_2h", "at_8h"):
            assert _close(row[col], float(theirs[col]), tol), (row, theirs)
        assert _close(row["best"], float(theirs["final"]), tol)
        points += 3
    group_index = {g.key: i for i, g in enumerate(data.groups)}
    for row in ours["agents"]:
        theirs = peer["agents"].loc[(slug_index[row["environment"]], group_index[row["group"]])]
        assert _close(row["mean"], float(theirs["mean"]), tol)
        assert _close(row["best"], float(theirs["max"]), tol)
        assert row["runs"] == int(theirs["count"])
        points += 2
    return points, ends, worst


IMPORT_ENTRIES = 3


def _import_file(path: Path, n: int, seed: int) -> None:
    """n runs over the seven environments (human 8 h runs and four agents), three entries each, full scale."""
    import json

    rng = np.random.default_rng(seed)
    specs = list(BUILTIN_ENVIRONMENTS)
    with path.open("w") as out:
        for i in range(n):
            spec = specs[i % len(specs)]
            slot = (i // len(specs)) % (len(AGENTS) + 1)  # 0: a human run, else one of the agents
            agent = AGENTS[slot - 1] if slot else None
            hours = agent[3] if agent else 8.0
            span = spec.reference_score - spec.starting_score
            times = np.sort(rng.uniform(0, hours * 3600, IMPORT_ENTRIES))
            log = [
                {
                    "elapsed_seconds": round(float(t), 1),
                    "score": round(spec.starting_score + span * rng.uniform(-0.2, 1.1), 6),
                }
                for t in times
            ]
            row = {
                "run_id": f"bench-{i}",
                "environment": spec.slug,
                "configuration": "full",
                "participant_kind": "agent" if agent else "human",
                "participant": f"expert {i % 97}" if not agent else "",
                "agent_name": agent[0] if agent else "",
                "agent_model": agent[1] if agent else "",
                "agent_scaffold": agent[2] if agent else "",
                "time_limit_seconds": hours * 3600,
                "score_log": log,
            }
            out.write(json.dumps(row) + "\n")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_child(path: str, results: Any) -> None:
    """In a fresh process: the import's wall time and how far it raised the process's peak RSS."""
    import django

    django.setup()
    from graders.imports import services as import_services
    from graders.imports.models import RunImport

    with open(path, "rb") as handle:
        run_import = import_services.run_import_create(
            upload=handle, name="bench.jsonl", size=os.path.getsize(path), kind="file", by=None, queue=False
        )
    before = _peak_rss_mb()
    wall = time.perf_counter()
    done = import_services.run_import_execute(run_import_id=run_import.pk)
    results.put(
        {
            "wall": time.perf_counter() - wall,
            "peak_mb": _peak_rss_mb(),
            "grew_mb": _peak_rss_mb() - before,
            "status": done.status,
            "error": done.error,
            "runs": done.runs_created,
            "entries": done.entries_written,
            "ok": done.status == RunImport.Status.DONE,
        }
    )


def import_benchmark(n: int, seed: int) -> None:
    import json
    import multiprocessing
    import tempfile

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from environments.services import environment_sync_registry
    from graders.leaderboards import services as leaderboard_services

    settings.LEADERBOARD_BOOTSTRAP_RESAMPLES = 1000
    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        environment_sync_registry()
        with tempfile.TemporaryDirectory() as folder:
            settings.MEDIA_ROOT = folder
            path = Path(folder) / "bench.jsonl"
            _import_file(path, n, seed)
            size = path.stat().st_size
            wall = time.perf_counter()
            with path.open() as handle:
                parsed = sum(1 for line in handle if json.loads(line))
            floor = time.perf_counter() - wall
            connection.close()
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            child = context.Process(target=_import_child, args=(str(path), results))
            child.start()
            result = results.get()
            child.join()
            if not result["ok"]:
                raise SystemExit(f"import refused: {result['status']} {result['error']}")
            print(
                f"import of {parsed:,} runs ({result['entries']:,} entries, {size / 1e6:.1f} MB JSONL, "
                f"{connection.vendor}): wall {result['wall']:.2f} s (target < 30 s), "
                f"peak RSS {result['peak_mb']:.0f} MB, "
                f"raised by the import {result['grew_mb']:.0f} MB (target < 300 MB)"
            )
            print(f"  floor, json.loads of every line: {floor:.2f} s; ratio {result['wall'] / floor:.1f}x")
        times = []
        for _ in range(3):
            wall = time.perf_counter()
            snapshot = leaderboard_services.leaderboard_snapshot_create()
            times.append(time.perf_counter() - wall)
        print(
            f"recompute of {snapshot.runs:,} runs (queries + every curve with 1,000 resamples + tables): "
            f"best {min(times):.2f} s of 3 ({', '.join(f'{t:.2f}' for t in times)}; target < 3 s); "
            f"computation alone {snapshot.duration_seconds:.2f} s"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        _ = test_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our implementation (the best is reported)")
    parser.add_argument("--seed", type=int, default=20241122)
    parser.add_argument("--skip-peer", action="store_true", help="time ours only (the peer takes minutes)")
    parser.add_argument("--imports", type=int, default=80_000, help="runs to import through the database (0 skips)")
    parser.add_argument("--only-imports", action="store_true", help="skip the in-memory comparison")
    args = parser.parse_args()
    if args.imports:
        import_benchmark(args.imports, args.seed)
    if args.only_imports:
        return

    data = synthetic()
    print(
        f"{len(data.environments)} environments, {data.run_count} runs "
        f"({len(data.environments) * HUMANS_PER_ENV} human, {AGENT_RUNS} agent), "
        f"{data.entry_run.size} score-log entries, {len(method.BUDGET_HOURS)} budgets, {args.resamples} resamples"
    )
    ours_times = []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        ours = method.leaderboard_compute(
            data, resamples=args.resamples, seed=args.seed, overrun_grace_seconds=GRACE
        ).to_json()
        ours_times.append((time.perf_counter() - wall, time.process_time() - cpu))
    ours_wall, ours_cpu = min(ours_times)
    if args.skip_peer:
        walls = ", ".join(f"{w:.3f}" for w, _ in ours_times)
        print(f"ours (numpy):  wall {ours_wall:8.3f} s  cpu {ours_cpu:8.3f} s  (best of {args.repeat}; walls {walls})")
        return
    wall, cpu = time.perf_counter(), time.process_time()
    peer = pandas_peer(data, resamples=args.resamples, seed=args.seed)
    peer_wall, peer_cpu = time.perf_counter() - wall, time.process_time() - cpu
    points, ends, worst = compare(ours, peer, data)
    print(
        f"agreement: {points} point values and {ends} interval ends equal within 1e-9 (largest difference {worst:.1e})"
    )
    # CPU time too: on a machine shared with other work, wall time includes waiting for a core.
    walls = ", ".join(f"{w:.3f}" for w, _ in ours_times)
    print(f"ours (numpy):  wall {ours_wall:8.3f} s  cpu {ours_cpu:8.3f} s  (best of {args.repeat}; walls {walls})")
    print(f"pandas peer:   wall {peer_wall:8.3f} s  cpu {peer_cpu:8.3f} s")
    print(f"ratio:         wall {peer_wall / ours_wall:8.1f}x   cpu {peer_cpu / ours_cpu:8.1f}x  (pandas / ours)")


if __name__ == "__main__":
    main()
