"""What keeps pytest-xdist's workers apart: each gets its own data folder and Redis databases.

The database needs nothing here (pytest-django names each worker's test database apart:
test_<name>_gw0, ...), nor do attempt users, tmux sockets and cgroups (named after the worker's
pid by tests/conftest.py). What is left is what the settings read once, at import, from the
environment: DATA_DIR (workspaces, recordings, sandboxes' state and locks are named after attempt
ids, which every worker's database starts again from 1) and REDIS_URL (channel groups and the
cache are named after ids too). The controller sets them in each worker's environment before the
worker starts, so the settings stay as they are in production: read from the environment,
nothing test-specific.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

# The Celery tests' own Redis database (tests/trials/celery_support.py) when REBENCH_TEST_REDIS_DB
# doesn't name one; under parallel workers counted down from there while the site's count up from
# REDIS_URL's, and refused where the two would meet.
CELERY_TEST_REDIS_DB = 15
# Where workers keep what outlives a run and is the same for all of them (trained models,
# corpora): one copy, built once, whichever worker gets there first (writes are atomic renames).
SHARED_DATA_ENV = "REBENCH_TEST_SHARED_DATA_DIR"


def worker_folder(data_dir: Path, index: int) -> Path:
    """The data folder of worker `index`, under DATA_DIR (which the settings make crossable).

    Made here, 0711 as DATA_DIR itself is: were the worker's settings to make it, as root under their
    umask of 077, `test-workers` would be 0700 and no attempt's or scorer's user could reach inside.
    """
    workers = data_dir / "test-workers"
    folder = workers / f"gw{index}"
    for path in (workers, folder):
        path.mkdir(exist_ok=True)
        path.chmod(0o711)
    return folder


def redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


def with_redis_db(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


def worker_environment(index: int, *, data_dir: Path, environ: dict[str, str]) -> dict[str, str]:
    """The environment variables of worker number `index` (gw<index>), over the controller's `environ`."""
    worker = {
        "DATA_DIR": str(worker_folder(data_dir, index)),
        SHARED_DATA_ENV: environ.get(SHARED_DATA_ENV, str(data_dir)),
    }
    celery_db = int(environ.get("REBENCH_TEST_REDIS_DB", CELERY_TEST_REDIS_DB)) - index
    worker["REBENCH_TEST_REDIS_DB"] = str(celery_db)
    if environ.get("REDIS_URL"):
        site_db = redis_db(environ["REDIS_URL"]) + index
        if site_db >= celery_db:
            raise RuntimeError(
                f"worker gw{index} would share Redis database {site_db} between the site and the Celery "
                "tests: run fewer workers, or lower REDIS_URL's database number"
            )
        worker["REDIS_URL"] = with_redis_db(environ["REDIS_URL"], site_db)
    return worker


# Test files that use something of the machine's that they can't name apart per worker run one
# after another, on one worker: file → the shared thing.
SHARED_SCOPES = {
    # grading_test_slow's scorer processes are counted machine-wide by name (they run in a PID
    # namespace, so nothing else tells them apart); the browser's grading test starts them too.
    "tests/graders/test_scoring_worker.py": "grading_test_slow's scorer",
    "tests/browser/test_grading.py": "grading_test_slow's scorer",
}


# Files whose tests are each long and share nothing: each test is sent to a worker of its own
# (their tests are sharded for this), so one file doesn't hold up the end of the run.
TEST_BY_TEST = {
    "tests/hostile/test_hostile_input.py",
    "tests/rebench_site/test_api_schemathesis.py",
}


# The longest files (or groups), slowest first: each is started before everything else, so the last
# to finish is never one that started last. From `--durations=0` of a whole run on a two-core
# machine; a file missing here only starts later (xdist's own order: most tests first).
LONGEST_FIRST = [
    "tests/environments/test_restricted_mlm.py",
    "tests/rebench_site/test_api_schemathesis.py",
    "tests/environments/test_nanogpt_chat_rl.py",
    "tests/environments/test_optimize_llm_foundry.py",
    "grading_test_slow's scorer",
    "tests/environments/test_rust_codecontests_scorer.py",
    "tests/environments/test_fix_embedding.py",
    "tests/hostile/test_hostile_input.py",
    "tests/trials/test_terminal_recording.py",
    "tests/browser/test_demo.py",
    "tests/browser/test_attempt_workspace.py",
    "tests/rebench_site/test_django_admin.py",
    "tests/rebench_site/test_seed_demo.py",
    "tests/trials/test_terminal_consumer.py",
    "tests/hostile/test_scorers_run_mlm_models_in_the_sandbox.py",
    "tests/environments/test_cumsum_scorer.py",
    "tests/browser/test_csp.py",
    "tests/hostile/test_scorers_keep_secrets_from_expert_code.py",
]
RANK = {scope: rank for rank, scope in enumerate(LONGEST_FIRST)}


class FileScheduling(LoadFileScheduling):
    """pytest-xdist's `--dist loadfile` (a file's tests on one worker, in order, its module
    fixtures made once), with the files of SHARED_SCOPES put together, those of TEST_BY_TEST apart,
    and those of LONGEST_FIRST first."""

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        if path in TEST_BY_TEST:
            return nodeid
        return SHARED_SCOPES.get(path, path)

    def _assign_work_unit(self, node: WorkerController) -> None:
        # The pending unit ranked first goes next; min keeps xdist's order among the unranked.
        first = min(self.workqueue, key=lambda scope: RANK.get(scope.split("::")[0], len(RANK)))
        self.workqueue.move_to_end(first, last=False)
        super()._assign_work_unit(node)
