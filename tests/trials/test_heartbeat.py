"""Workstation liveness: heartbeats through each workstation's own Celery queue, and what status that gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from rebench_site.errors import ServiceError
from tests import factories
from tests.conftest import needs_bwrap
from tests.trials.celery_support import BROKERS, broker_url, queue_length, running_worker, using_broker, wait_for
from trials import services
from trials.models import Workstation
from trials.tasks import workstations_ping


@pytest.fixture(params=BROKERS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


def heartbeat_of(workstation: Workstation) -> object:
    return Workstation.objects.values_list("last_heartbeat_at", flat=True).get(pk=workstation.pk)


@needs_bwrap  # the heartbeat reports whether the workstation can sandbox: without bubblewrap it can't be booked
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_only_a_workstation_whose_worker_consumes_its_queue_gets_a_heartbeat(app: Celery) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    alive = factories.WorkstationFactory.create(name="alive", last_heartbeat_at=long_ago)
    dead = factories.WorkstationFactory.create(name="dead", last_heartbeat_at=long_ago)
    retired = factories.WorkstationFactory.create(
        name="retired", status=Workstation.Status.OFFLINE, last_heartbeat_at=None
    )
    assert alive.effective_status() == dead.effective_status() == Workstation.Status.OFFLINE

    # The worker of `alive` only: it takes the ping from the default queue and its own heartbeats.
    with running_worker(app, queues=[settings.CELERY_TASK_DEFAULT_QUEUE, alive.queue_name]):
        workstations_ping.delay()
        assert wait_for(lambda: heartbeat_of(alive) != long_ago, timeout=30)

    alive.refresh_from_db()
    dead.refresh_from_db()
    retired.refresh_from_db()
    assert alive.last_heartbeat_at is not None
    assert timezone.now() - alive.last_heartbeat_at < timedelta(seconds=30)
    assert alive.effective_status() == Workstation.Status.ACTIVE
    assert alive.is_bookable()
    # Nobody consumes the dead workstation's queue: its heartbeat waits there and it stays offline.
    assert dead.last_heartbeat_at == long_ago
    assert dead.effective_status() == Workstation.Status.OFFLINE
    assert queue_length(app, dead.queue_name) == 1
    # Workstations an admin took offline are not pinged at all.
    assert queue_length(app, retired.queue_name) == 0
    assert retired.last_heartbeat_at is None


@pytest.mark.django_db
def test_a_workstation_goes_offline_once_silent_for_longer_than_the_limit(workstation: Workstation) -> None:
    beat = timezone.now()
    services.workstation_record_heartbeat(workstation_id=workstation.pk, at=beat)
    workstation.refresh_from_db()
    limit = settings.WORKSTATION_OFFLINE_AFTER
    assert workstation.effective_status(beat + limit) == Workstation.Status.ACTIVE
    assert workstation.effective_status(beat + limit + timedelta(microseconds=1)) == Workstation.Status.OFFLINE
    assert not workstation.is_bookable(beat + limit + timedelta(seconds=1))


@pytest.mark.django_db
def test_a_workstation_that_never_sent_a_heartbeat_is_offline() -> None:
    silent = factories.WorkstationFactory.create(name="silent", last_heartbeat_at=None)
    assert silent.effective_status() == Workstation.Status.OFFLINE


@pytest.mark.django_db
def test_a_drained_workstation_shows_draining_whatever_its_heartbeat(workstation: Workstation) -> None:
    services.workstation_set_status(workstation=workstation, status=Workstation.Status.DRAINING)
    workstation.refresh_from_db()
    now = timezone.now()
    assert workstation.effective_status(now) == Workstation.Status.DRAINING
    assert workstation.effective_status(now + timedelta(days=1)) == Workstation.Status.DRAINING
    assert not workstation.is_bookable(now)

    services.workstation_set_status(workstation=workstation, status=Workstation.Status.ACTIVE)
    workstation.refresh_from_db()
    assert workstation.effective_status(now) == Workstation.Status.ACTIVE


@pytest.mark.django_db
def test_an_unknown_status_is_refused(workstation: Workstation) -> None:
    with pytest.raises(ServiceError):
        services.workstation_set_status(workstation=workstation, status="asleep")
    workstation.refresh_from_db()
    assert workstation.status == Workstation.Status.ACTIVE


@pytest.mark.django_db
def test_a_heartbeat_for_a_deleted_workstation_is_reported_as_such() -> None:
    assert services.workstation_record_heartbeat(workstation_id=987654) is False
