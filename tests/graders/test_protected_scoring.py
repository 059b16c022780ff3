"""As root: a user per attempt; its scorer runs as it in `protected`; nobody reads another attempt's work."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from graders import services
from graders.models import ScoreLogEntry, ScoringJob
from tests.unix_users_support import as_user
from tests.workspace_support import put
from trials.models import Attempt
from workstation import layout
from workstation import scoring as sandbox
from workstation import users as unix_users
from workstation.agent.tasks import scoring_job_run

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="protected scoring and per-attempt users switch users: needs root"),
    pytest.mark.timeout(120),
]


def score(attempt: Attempt, capture, kind: str = ScoringJob.Kind.INTERMEDIATE) -> ScoreLogEntry:
    job = ScoringJob.objects.create(attempt=attempt, queue_name="ws.test", kind=kind)
    with capture(execute=True):
        scoring_job_run(str(job.pk))
    return ScoreLogEntry.objects.get(job=job)


def protected_gid() -> int:
    return grp.getgrnam(sandbox.PROTECTED_GROUP).gr_gid


def test_each_attempt_gets_its_own_unprivileged_user_owning_its_workspace(
    attempt_on: Callable[..., Attempt],
) -> None:
    first, second = attempt_on("grading_test_ok"), attempt_on("grading_test_ok")
    for attempt in (first, second):
        services.workspace_prepare(attempt=attempt)
    users = [pwd.getpwnam(unix_users.attempt_user_name(a.pk)) for a in (first, second)]
    assert users[0].pw_uid != users[1].pw_uid
    for attempt, user in zip((first, second), users, strict=True):
        assert user.pw_name == f"{settings.TERMINAL_ATTEMPT_USER_PREFIX}{attempt.pk}"
        assert user.pw_uid != 0
        assert user.pw_gid != 0
        # Its own group only: not `protected`, not sudo, nothing another attempt shares.
        assert os.getgrouplist(user.pw_name, user.pw_gid) == [user.pw_gid]
        assert stat.S_IMODE(os.stat(user.pw_dir).st_mode) == 0o700
        workspace = layout.workspace(attempt.pk).stat()
        assert (workspace.st_uid, workspace.st_gid) == (user.pw_uid, user.pw_gid)
        assert stat.S_IMODE(workspace.st_mode) == 0o700


def test_preparing_twice_or_from_two_places_makes_one_user(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    first = unix_users.attempt_user(attempt.pk)
    services.workspace_prepare(attempt=attempt)
    assert unix_users.attempt_user(attempt.pk) == first
    assert sum(1 for e in pwd.getpwall() if e.pw_name == first.name) == 1


def test_the_protected_group_reads_the_scorer_but_the_attempts_shell_user_cannot(
    attempt_on: Callable[..., Attempt], grading_dirs: Path
) -> None:
    attempt = attempt_on("grading_test_ok")
    user = unix_users.attempt_user(attempt.pk).name
    sandbox.ensure_protected_group()
    source = Path(settings.BASE_DIR) / "environments" / "ai_rd_small_scaling_law" / "scoring"
    copy = sandbox.fresh_copy(source, grading_dirs / "protected" / "scorers" / "probe", protected=True)
    (grading_dirs / "protected").chmod(0o755)
    (grading_dirs / "protected" / "scorers").chmod(0o755)
    scorer = copy / "score.py"

    shell = as_user(user, [], ["cat", str(scorer)])
    assert shell.returncode != 0
    assert "Permission denied" in shell.stderr

    scoring = as_user(user, [protected_gid()], ["cat", str(scorer)])
    assert scoring.returncode == 0
    assert "def loss_at(" in scoring.stdout

    rewrite = as_user(user, [protected_gid()], ["sh", "-c", f"echo pwned > {scorer}"])
    assert rewrite.returncode != 0
    assert "def loss_at(" in scorer.read_text()


def test_a_scorer_cannot_rewrite_its_code_nor_read_another_attempts_workspace(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    mine, theirs = attempt_on("grading_test_tamper"), attempt_on("grading_test_tamper")
    for attempt in (mine, theirs):
        services.workspace_prepare(attempt=attempt)
    secret = put(layout.workspace(theirs.pk), "secret.txt", "their work")
    put(layout.workspace(mine.pk), "other.txt", str(secret))
    # The same scorer, pointed at a file its own snapshot holds, reads it: the refusal below is the sandbox's.
    put(layout.workspace(theirs.pk), "other.txt", "/home/agent/other.txt")

    entry = score(mine, django_capture_on_commit_callbacks)
    # Its own code is mounted read-only; the other workspace isn't in its sandbox at all.
    assert entry.details["rewrote_scorer"] == "OSError"
    assert entry.details["read_other"] == "FileNotFoundError"
    assert score(theirs, django_capture_on_commit_callbacks).details["read_other"] == "/home/agent/other.txt"


def test_an_attempts_shell_user_cannot_read_another_attempts_workspace(attempt_on: Callable[..., Attempt]) -> None:
    mine, theirs = attempt_on("grading_test_ok"), attempt_on("grading_test_ok")
    for attempt in (mine, theirs):
        services.workspace_prepare(attempt=attempt)
    secret = put(layout.workspace(theirs.pk), "secret.txt", "their work")
    me = unix_users.attempt_user_name(mine.pk)
    shell = as_user(me, [], ["bash", "-c", f"cat {secret}; ls {secret.parent}"])
    assert "their work" not in shell.stdout
    assert shell.stderr.count("Permission denied") == 2
    # Its own workspace is its own.
    assert as_user(me, [], ["touch", str(layout.workspace(mine.pk) / "mine.txt")]).returncode == 0


def test_the_csv_score_log_is_root_protected_0640_and_the_expert_cannot_read_it(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    score(attempt, django_capture_on_commit_callbacks)
    score(attempt, django_capture_on_commit_callbacks)
    log = services.csv_log_path(attempt.pk)
    info, folder = log.stat(), log.parent.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, protected_gid(), 0o640)
    assert (folder.st_uid, folder.st_gid, stat.S_IMODE(folder.st_mode)) == (0, protected_gid(), 0o750)
    lines = log.read_text().splitlines()
    assert lines[0] == "timestamp,score,message,details"
    assert len(lines) == 3

    user = unix_users.attempt_user_name(attempt.pk)
    assert as_user(user, [], ["cat", str(log)]).returncode != 0
    assert as_user(user, [protected_gid()], ["cat", str(log)]).stdout.splitlines()[0] == lines[0]
    # The scoring group reads it but can't forge a line in it.
    assert as_user(user, [protected_gid()], ["sh", "-c", f"echo forged >> {log}"]).returncode != 0


def test_the_final_score_retires_the_attempts_user_and_a_new_shell_reopens_it(
    attempt_on: Callable[..., Attempt], django_capture_on_commit_callbacks
) -> None:
    attempt = attempt_on("grading_test_ok")
    services.workspace_prepare(attempt=attempt)
    user = unix_users.attempt_user(attempt.pk)
    left_running = subprocess.Popen(  # what `nohup python train.py &` leaves behind
        ["sleep", "300"], user=user.uid, group=user.gid, extra_groups=[], start_new_session=True
    )
    Attempt.objects.filter(pk=attempt.pk).update(
        status=Attempt.Status.ENDED, ended_at=attempt.started_at, end_reason=Attempt.EndReason.SUBMITTED
    )
    attempt.refresh_from_db()

    entry = score(attempt, django_capture_on_commit_callbacks, kind=ScoringJob.Kind.FINAL)
    assert entry.score is not None
    deadline = time.monotonic() + 5
    while left_running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left_running.poll() is not None, "the retired user's processes are stopped"
    assert unix_users._expired(user.name)
    assert layout.workspace(attempt.pk).is_dir(), "the workspace is kept for review and re-scoring"
    # An admin's re-run still scores as that user.
    assert score(attempt, django_capture_on_commit_callbacks, kind=ScoringJob.Kind.FINAL).score == entry.score

    assert unix_users.attempt_user(attempt.pk, reopen=True) == user
    assert not unix_users._expired(user.name)


def test_a_running_attempts_user_is_never_retired(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    services.workspace_prepare(attempt=attempt)
    assert services.attempt_user_retire(attempt_id=attempt.pk) is False
    assert not unix_users._expired(unix_users.attempt_user_name(attempt.pk))


def test_an_existing_account_in_a_privileged_group_is_refused(attempt_on: Callable[..., Attempt]) -> None:
    attempt = attempt_on("grading_test_ok")
    name = unix_users.attempt_user(attempt.pk).name
    sandbox.ensure_protected_group()
    subprocess.run(["usermod", "-a", "-G", sandbox.PROTECTED_GROUP, name], check=True)
    try:
        with pytest.raises(unix_users.UnixUserError, match="protected"):
            unix_users.attempt_user(attempt.pk)
    finally:  # attempt ids restart with each test's database: the next test gets this user again
        subprocess.run(["gpasswd", "-d", name, sandbox.PROTECTED_GROUP], check=True, capture_output=True)


def test_an_attempt_without_a_final_scoring_run_has_its_user_retired_when_it_ends(
    attempt_on: Callable[..., Attempt], monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    from rebench_site.celery import app
    from trials import services as trials_services

    # The retiring task runs here, at once. Into the loaded configuration's changes: a Django setting
    # changed now is not seen by a Celery configuration an earlier test of this worker already read.
    assert not app.conf.task_always_eager
    changes = app.conf.changes
    assert changes is not None
    monkeypatch.setitem(changes, "CELERY_TASK_ALWAYS_EAGER", True)
    assert app.conf.task_always_eager
    attempt = attempt_on("grading_test_unpackaged", description="No package on this site.")
    services.workspace_prepare(attempt=attempt)
    user = unix_users.attempt_user(attempt.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert attempt.user is not None
        trials_services.attempt_submit(attempt=attempt, by=attempt.user)
    assert unix_users._expired(user.name)
    assert not ScoringJob.objects.filter(attempt=attempt).exists()
