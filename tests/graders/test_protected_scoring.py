"""As root, the scorer runs as the expert's user in `protected`; the expert's shell can't read the scorer."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from graders import sandbox, services
from graders.models import ScoreLogEntry, ScoringJob
from graders.tasks import scoring_job_run
from trials.models import Attempt

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="protected scoring switches users: needs root"),
    pytest.mark.timeout(120),
]


def as_user(user: str, groups: list[int], argv: list[str]) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(user)

    def drop() -> None:
        os.setgroups(groups)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return subprocess.run(argv, preexec_fn=drop, capture_output=True, text=True, check=False)


def test_the_expert_cannot_read_the_scorer_but_the_protected_group_can(grading_dirs: Path) -> None:
    sandbox.ensure_protected_users()
    source = Path(settings.BASE_DIR) / "environments" / "ai_rd_small_scaling_law" / "scoring"
    copy = sandbox.fresh_copy(source, grading_dirs / "protected" / "scorers" / "probe", protected=True)
    (grading_dirs / "protected").chmod(0o755)
    (grading_dirs / "protected" / "scorers").chmod(0o755)
    scorer = copy / "score.py"
    expert = sandbox.expert_user()
    protected_gid = grp.getgrnam(sandbox.PROTECTED_GROUP).gr_gid
    assert protected_gid not in os.getgrouplist(expert, pwd.getpwnam(expert).pw_gid)

    shell = as_user(expert, [], ["cat", str(scorer)])
    assert shell.returncode != 0
    assert "Permission denied" in shell.stderr

    scoring = as_user(expert, [protected_gid], ["cat", str(scorer)])
    assert scoring.returncode == 0
    assert "BUDGET_FLOPS" in scoring.stdout

    rewrite = as_user(expert, [protected_gid], ["sh", "-c", f"echo pwned > {scorer}"])
    assert rewrite.returncode != 0
    assert "BUDGET_FLOPS" in scorer.read_text()


def test_a_solution_cannot_rewrite_the_scorer_nor_read_the_log_as_the_expert(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    attempt = attempt_on("grading_test_tamper")
    services.workspace_prepare(attempt=attempt)
    workspace = services.workspace_path(attempt)
    assert pwd.getpwuid(workspace.stat().st_uid).pw_name == sandbox.expert_user()
    assert workspace.stat().st_mode & 0o077 == 0  # nobody but the expert's user

    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test")
    with django_capture_on_commit_callbacks(execute=True):
        scoring_job_run(str(job.pk))
    entry = ScoreLogEntry.objects.get(job=job)
    assert entry.details["rewrote_scorer"] == "PermissionError"

    # The CSV score log is the protected group's: the expert's shell can't read it.
    log = Path(settings.PROTECTED_DIR) / "logs" / f"attempt-{attempt.pk}.csv"
    assert "tamper report" in log.read_text()
    shell = as_user(sandbox.expert_user(), [], ["cat", str(log)])
    assert shell.returncode != 0
