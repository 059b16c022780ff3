"""The Celery application: settings come from Django's settings (CELERY_*)."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebench_site.settings")

app = Celery("rebench_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The tasks of a workstation's queue: the site's own worker runs them for the local workstation.
app.conf.include = ["workstation.agent.tasks"]

# Pools a forked worker process inherited from its parent: kept referenced and never closed, as
# closing (or collecting) them would end the parent's sessions over the sockets both share.
_INHERITED_POOLS: list[Any] = []


@signals.worker_process_init.connect
def database_pools_of_its_own(**_: Any) -> None:
    """A prefork worker process opens its own PostgreSQL pool (DB_POOL), never the parent's.

    The parent's pool, if it opened one, came through the fork with its connections' sockets (shared
    with the parent) and without its threads (which open and check connections).
    """
    forget_inherited_pools()


def forget_inherited_pools() -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper

    # Django's per-process registry of pools, by database alias (not in its type stubs).
    pools: dict[str, Any] = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]  # (see above)
    _INHERITED_POOLS.extend(pools.values())
    pools.clear()
