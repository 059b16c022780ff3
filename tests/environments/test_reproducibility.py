"""The small configurations are reproducible: the same corpus, models and data on every machine that prepares them.

A small attempt's normalised score divides by its configuration's measured start and reference:
those constants hold only if every workstation prepares the same starting solution. The corpus
was read from the running interpreter's standard library: another patch version or distribution
(Debian's 3.11.2 gives 431 modules and 1.37 MB of training text where 3.11.7 gives 443 and 1.49 MB)
trained another model. And llm-foundry's base model trained on as many threads as the machine had
cores, at a learning rate where another partition of the sums made another model.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import call_command
from django.test import override_settings

from environments import measure, packages
from environments.common import corpus

# The shipped corpus's splits (CPython 3.11.7's docstrings): the bytes every machine trains and scores on.
SPLITS = {
    "train.bin": "62390122f6ea4c83445e6b92830c3893cb667dfc4f19d0ae1dd79c944f3a1e58",
    "val.bin": "7f307fda9b4f49c1c466d13b7eb06e9f8b405a5dd6aebab36569ea131f19de89",
    "dev.bin": "66a4323b123c2fc279210c087c256b1486d673c2346d209c811b9ee4288acb70",
    "test.bin": "339ed6998b8a6f1d9983e720d7616c5650fff6a958815725cc7111e5da48a7e3",
}
# The environments whose start builds something (data, trained models): each is prepared twice.
PREPARED = ("ai_rd_fix_embedding", "ai_rd_nanogpt_chat_rl", "ai_rd_restricted_mlm", "ai_rd_optimize_llm_foundry")


def test_the_corpus_is_the_same_bytes_whatever_python_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another machine's interpreter: another version and a standard library with other modules in it.
    other_stdlib = tmp_path / "lib" / "python3.11"
    (other_stdlib / "json").mkdir(parents=True)
    (other_stdlib / "json" / "__init__.py").write_text('"""A standard library split into distribution packages."""\n')
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: {"stdlib": str(other_stdlib)})
    monkeypatch.setattr(sys, "version_info", (3, 11, 2, "final", 0))
    built = corpus.build(tmp_path / "cache")
    assert {name: hashlib.sha256((built.root / name).read_bytes()).hexdigest() for name in SPLITS} == SPLITS
    assert built.meta["source_sha256"] == corpus.SOURCE_SHA256


def test_a_corpus_source_that_is_not_the_shipped_file_is_refused(tmp_path: Path) -> None:
    changed = tmp_path / "source.jsonl.gz"
    changed.write_bytes(corpus.SOURCE.read_bytes()[:-1])
    with pytest.raises(corpus.CorpusSourceError, match="SHA-256 differs"):
        next(corpus.source_documents(changed))
    with pytest.raises(corpus.CorpusSourceError, match="missing"):
        next(corpus.source_documents(tmp_path / "absent.gz"))


@contextmanager
def cpus(count: int) -> Iterator[None]:
    """A machine with `count` cores, as the start script sees it: torch's default thread count follows the affinity."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:count])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def prepare(slug: str, machine: Path, count: int) -> Path:
    """One workstation's preparation: its own cache, protected folder and workspace path, `count` cores."""
    workspace = machine / "workspace" / slug
    workspace.mkdir(parents=True)
    with (
        override_settings(
            ENVIRONMENT_CONFIGURATION="small",
            ENVIRONMENT_CONFIGURATION_OVERRIDES={},
            ENVIRONMENT_CACHE_DIR=machine / "cache",
            PROTECTED_DIR=machine / "protected",
        ),
        cpus(count),
    ):
        package = packages.find(slug)
        assert package is not None
        package.prepare_staging(workspace)
    return workspace


def contents(path: Path) -> Any:
    """A checkpoint's config and tensors (torch.save's bytes also name the file it wrote), else the file's bytes."""
    if path.suffix != ".pth":
        return path.read_bytes()
    data = torch.load(path, map_location="cpu", weights_only=True)
    state = data["model"] if isinstance(data, dict) and "model" in data else data
    return data.get("config"), {name: tensor.numpy().tobytes() for name, tensor in state.items()}


def artefacts(workspace: Path, cache: Path) -> dict[str, Any]:
    """What the expert starts with and what the scorer reads from the cache (the corpus, kept models, references)."""
    files = {f"workspace/{p.relative_to(workspace)}": p for p in workspace.rglob("*") if p.is_file()}
    for path in cache.rglob("*"):
        if path.is_file() and (path.parent.name.startswith("corpus-") or path.name in ("base_model.pth",)):
            files[f"cache/{path.parent.name.split('-')[0]}/{path.name}"] = path
        if path.name.startswith("reference-weights-"):
            files["cache/reference-weights"] = path
    return {name: contents(path) for name, path in sorted(files.items())}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to prepare with one and with two")
def test_small_configurations_prepare_the_same_workspace_twice(tmp_path: Path) -> None:
    """Two machines: one core and two, separate caches, workspaces and HOMEs; the same files, tensor for tensor."""
    differing = {}
    for slug in PREPARED:
        first = artefacts(prepare(slug, tmp_path / "one-core", 1), tmp_path / "one-core" / "cache" / slug)
        second = artefacts(prepare(slug, tmp_path / "two-cores", 2), tmp_path / "two-cores" / "cache" / slug)
        assert first.keys() == second.keys(), slug
        assert any(name.endswith(".pth") for name in first), slug  # a trained model was compared
        differing[slug] = sorted(name for name in first if first[name] != second[name])
    assert differing == {slug: [] for slug in PREPARED}


# Scores that are wall-clock time: their constants are medians over runs and carry the runs' spread.
WALL_CLOCK = {"ai_rd_optimize_llm_foundry"}


@pytest.mark.parametrize("slug", PREPARED)
def test_a_small_start_runs_with_its_cpu_arithmetic_pinned_and_full_scale_as_the_machine_has_it(
    slug: str, settings: Any
) -> None:
    package = packages.find(slug)
    assert package is not None
    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    assert packages.cpu_environment(package) == packages.REPRODUCIBLE_CPU_ENVIRONMENT
    assert packages.REPRODUCIBLE_CPU_ENVIRONMENT["OMP_NUM_THREADS"] == "1"
    assert package.configuration is not None
    assert package.configuration.params.get("threads") == 1
    settings.ENVIRONMENT_CONFIGURATION = "full"
    assert packages.cpu_environment(package) == {}


def test_wall_clock_constants_carry_their_spread_and_deterministic_ones_none() -> None:
    for path in sorted(packages.BUILTIN_DIR.glob("ai_rd_*")):
        package = packages.find_on_disk(path.name)
        assert package is not None
        small = package.configurations.get("small")
        if small is None:
            continue
        spreads = (small.starting_score_spread, small.reference_score_spread)
        if package.slug not in WALL_CLOCK:
            assert spreads == (None, None), package.slug
            continue
        gap = abs(small.reference_score - small.starting_score)
        # Noise smaller than the distance it normalises by, or a normalised score would mean nothing.
        assert all(spread is not None and 0 < spread < gap for spread in spreads), (package.slug, spreads, gap)
        assert "spread" in small.note


def test_measuring_several_runs_prints_each_scores_median_and_spread(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ENVIRONMENT_CONFIGURATION = "small"
    settings.ENVIRONMENT_CONFIGURATION_OVERRIDES = {}
    seconds = iter([(10.0, 5.0), (16.0, 5.5), (12.0, None)])

    def measured(slug: str) -> list[measure.Measurement]:
        start, reference = next(seconds)
        return [
            measure.Measurement("starting", math.log(start), f"{start} s", start),
            measure.Measurement("reference", None if reference is None else math.log(reference), "", 0.0),
        ]

    monkeypatch.setattr(measure, "measure", measured)
    out = io.StringIO()
    call_command("environment_measure", "ai_rd_optimize_llm_foundry", "--runs", "3", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "ai_rd_optimize_llm_foundry (small)"
    assert sum(line.startswith("run ") for line in lines) == 6
    assert lines[-2] == (
        f"starting: median {math.log(12.0)!r}, spread {math.log(16.0) - math.log(10.0)!r} "
        f"({math.log(10.0)!r} to {math.log(16.0)!r}, 3 of 3 runs scored)"
    )
    assert lines[-1].startswith(f"reference: median {(math.log(5.0) + math.log(5.5)) / 2!r}, ")
    assert lines[-1].endswith("2 of 3 runs scored)")
