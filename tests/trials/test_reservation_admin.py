"""An admin moves a slot's end or cancels it: the checks, the running attempt's hard stop, the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from environments.models import Environment
from rebench_site.errors import NotAllowed, ServiceError
from tests import factories
from trials import services
from trials.models import Attempt, Pause, Reservation, Workstation

pytestmark = pytest.mark.django_db


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def no_attempt_limit(env_cumsum: Environment) -> None:
    """Some tests here hold a slot and an attempt for one expert: about ends, not the one-attempt rule."""
    env_cumsum.attempts_per_expert = 0
    env_cumsum.save()


@pytest.fixture
def slot(expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime) -> Reservation:
    """Ada's booking for tomorrow."""
    return services.reservation_create(
        expert=expert,
        environment=env_cumsum,
        workstation=workstation,
        starts_at=(now + timedelta(days=1)).replace(second=0),
        created_by=expert,
        now=now,
    )


@pytest.fixture
def running(expert: User, env_cumsum: Environment, workstation: Workstation, now: datetime) -> Attempt:
    """Ada's attempt, begun a minute ago in the slot she booked then."""
    began = now - timedelta(minutes=1)
    reservation = services.reservation_create(
        expert=expert, environment=env_cumsum, workstation=workstation, starts_at=began, created_by=expert, now=began
    )
    return services.attempt_start(reservation=reservation, by=expert, now=began)


def change(reservation: Reservation, by: User, ends_at: datetime, now: datetime, note: str = "") -> Reservation:
    return services.reservation_change_end(reservation=reservation, by=by, ends_at=ends_at, note=note, now=now)


def refused(reservation: Reservation, by: User, ends_at: datetime, now: datetime) -> ServiceError:
    """Expect a ServiceError naming ends_at, with the slot, the attempt and the audit log as they were."""
    before = Reservation.objects.get(pk=reservation.pk).ends_at
    attempt = Attempt.objects.filter(reservation=reservation).first()
    with pytest.raises(ServiceError) as info:
        change(reservation, by, ends_at, now)
    assert Reservation.objects.get(pk=reservation.pk).ends_at == before
    if attempt is not None:
        assert Attempt.objects.get(pk=attempt.pk).hard_stop_at == attempt.hard_stop_at
    assert not AuditEvent.objects.filter(action__startswith="reservation.").exists()
    return info.value


def test_an_admin_extends_an_unstarted_slot_and_the_audit_log_says_who_when_from_what_to_what_and_why(
    slot: Reservation, admin_user: User, now: datetime
) -> None:
    old_end = slot.ends_at
    changed = change(slot, admin_user, old_end + timedelta(hours=1), now, note="  the driver update ran late  ")
    assert changed.ends_at == old_end + timedelta(hours=1)
    event = AuditEvent.objects.get(action="reservation.extend")
    assert event.actor == admin_user
    assert event.at == now
    assert event.subject == f"reservation {slot.pk} (ada, h100-a)"
    assert event.before == {"ends_at": old_end.isoformat()}
    assert event.after == {"ends_at": changed.ends_at.isoformat()}
    assert event.note == "the driver update ran late"
    assert event.attempt_id is None


def test_extending_into_the_next_booking_on_the_workstation_is_refused_and_names_it(
    slot: Reservation, other_expert: User, admin_user: User, now: datetime
) -> None:
    services.reservation_create(
        expert=other_expert,
        environment=slot.environment,
        workstation=slot.workstation,
        starts_at=slot.ends_at + timedelta(minutes=30),
        created_by=other_expert,
        now=now,
    )
    error = refused(slot, admin_user, slot.ends_at + timedelta(hours=1), now)
    assert error.field == "ends_at"
    assert "(grace); move or cancel that booking first" in str(error)
    # Up to the next booking's start is free.
    assert change(slot, admin_user, slot.ends_at + timedelta(minutes=30), now).pk == slot.pk


def test_extending_into_the_experts_own_booking_elsewhere_is_refused(
    slot: Reservation, expert: User, admin_user: User, env_cumsum: Environment, now: datetime
) -> None:
    services.reservation_create(
        expert=expert,
        environment=env_cumsum,
        workstation=factories.WorkstationFactory.create(name="h100-b"),
        starts_at=slot.ends_at + timedelta(minutes=10),
        created_by=expert,
        now=now,
    )
    error = refused(slot, admin_user, slot.ends_at + timedelta(hours=1), now)
    assert str(error) == "ada holds another reservation in that time."


def test_an_unstarted_slot_cannot_shrink_below_the_time_limit_plus_set_up(
    slot: Reservation, admin_user: User, now: datetime
) -> None:
    error = refused(slot, admin_user, slot.starts_at + slot.environment.time_limit, now)
    assert "at least" in str(error)


def test_shortening_a_running_attempts_slot_moves_its_hard_stop_and_the_deadline_task_ends_it_there(
    running: Attempt, admin_user: User, now: datetime
) -> None:
    reservation = running.reservation
    new_end = now + timedelta(hours=2)
    assert reservation is not None
    change(reservation, admin_user, new_end, now, note="maintenance at noon")
    running.refresh_from_db()
    assert running.hard_stop_at == new_end
    assert Attempt.objects.prefetch_related("pauses").get(pk=running.pk).deadline() == new_end
    event = AuditEvent.objects.get(action="reservation.shorten")
    assert event.attempt_id == running.pk
    # An hour on nothing happens; past the new end the sweep ends it at the new end, not later.
    assert services.attempt_enforce_deadline(attempt_id=running.pk, now=new_end - timedelta(hours=1)).is_running
    ended = services.attempt_enforce_deadline(attempt_id=running.pk, now=new_end + timedelta(minutes=3))
    assert ended.status == Attempt.Status.ENDED
    assert ended.end_reason == Attempt.EndReason.RESERVATION_END
    assert ended.ended_at == new_end


def test_extending_a_running_attempts_slot_gives_back_time_a_long_pause_cost(
    running: Attempt, admin_user: User, now: datetime
) -> None:
    reservation = running.reservation
    old_stop = running.hard_stop_at
    assert old_stop == reservation.ends_at
    # Two hours lost to a broken machine: the clock's deadline now lies past the slot's end.
    Pause.objects.create(
        attempt=running,
        reason=Pause.Reason.TECHNICAL,
        started_at=running.started_at + timedelta(minutes=10),
        ended_at=running.started_at + timedelta(hours=2, minutes=10),
    )
    assert Attempt.objects.prefetch_related("pauses").get(pk=running.pk).deadline() == old_stop
    assert reservation is not None
    change(reservation, admin_user, reservation.ends_at + timedelta(hours=3), now)
    running.refresh_from_db()
    assert running.hard_stop_at == old_stop + timedelta(hours=3)
    # Past the old stop, the attempt runs on.
    assert services.attempt_enforce_deadline(attempt_id=running.pk, now=old_stop + timedelta(minutes=1)).is_running


def test_an_expert_cannot_move_their_own_slots_end(slot: Reservation, expert: User, now: datetime) -> None:
    with pytest.raises(NotAllowed):
        change(slot, expert, slot.ends_at + timedelta(hours=2), now)
    assert Reservation.objects.get(pk=slot.pk).ends_at == slot.ends_at


def test_an_end_in_the_past_beyond_the_longest_slot_or_without_a_zone_is_refused(
    running: Attempt, admin_user: User, now: datetime
) -> None:
    reservation = running.reservation
    assert reservation is not None
    assert "to stop the attempt now, end it" in str(refused(reservation, admin_user, now - timedelta(seconds=1), now))
    too_long = reservation.starts_at + settings.RESERVATION_MAX_LENGTH + timedelta(minutes=1)
    assert "at most" in str(refused(reservation, admin_user, too_long, now))
    assert "time zone" in str(refused(reservation, admin_user, datetime(2030, 1, 1, 12, 0), now))


def test_a_cancelled_slot_or_one_whose_attempt_ended_cannot_be_moved(
    slot: Reservation, running: Attempt, admin_user: User, now: datetime
) -> None:
    services.reservation_cancel(reservation=slot, by=admin_user, now=now)
    AuditEvent.objects.all().delete()
    assert "cancelled" in str(refused(slot, admin_user, slot.ends_at + timedelta(hours=1), now))
    assert running.user is not None
    services.attempt_submit(attempt=running, by=running.user, now=now)
    assert running.reservation_id is not None
    reservation = Reservation.objects.get(pk=running.reservation_id)
    assert "has ended" in str(refused(reservation, admin_user, reservation.ends_at + timedelta(hours=1), now))


def test_an_admin_cancelling_an_experts_slot_is_audited_and_the_experts_own_cancel_is_not(
    slot: Reservation, expert: User, admin_user: User, env_cumsum: Environment, now: datetime
) -> None:
    services.reservation_cancel(reservation=slot, by=admin_user, now=now)
    event = AuditEvent.objects.get(action="reservation.cancel")
    assert event.actor == admin_user
    assert event.subject == f"reservation {slot.pk} (ada, h100-a)"
    own = services.reservation_create(
        expert=expert,
        environment=env_cumsum,
        workstation=slot.workstation,
        starts_at=slot.starts_at,
        created_by=expert,
        now=now,
    )
    services.reservation_cancel(reservation=own, by=expert, now=now)
    assert AuditEvent.objects.filter(action="reservation.cancel").count() == 1


# --- the page -------------------------------------------------------------------------------


def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_the_reservations_page_lists_live_slots_soonest_first_in_a_fixed_number_of_queries(
    admin_user: User,
    env_cumsum: Environment,
    django_assert_max_num_queries,
    now: datetime,
) -> None:
    for n in range(12):
        factories.ReservationFactory.create(
            expert=factories.expert(username=f"e{n:02}"),
            environment=env_cumsum,
            starts_at=now + timedelta(hours=n),
        )
    past = factories.ReservationFactory.create(environment=env_cumsum, starts_at=now - timedelta(days=2))
    client = admin_client(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("trials:reservations")).content.decode()
    assert "12 reservations." in page
    assert page.index("e00") < page.index("e05") < page.index("e11")
    assert f'data-reservation="{past.pk}"' not in page
    assert f'data-reservation="{past.pk}"' in client.get(reverse("trials:reservations") + "?view=past").content.decode()
    assert "1 reservation." in client.get(reverse("trials:reservations") + "?q=e07").content.decode()


def test_a_bad_view_or_environment_shows_every_live_one_with_a_message(admin_user: User) -> None:
    page = admin_client(admin_user).get(reverse("trials:reservations") + "?view=nope&environment=nope").content.decode()
    assert "No view &#x27;nope&#x27;: showing now and upcoming." in page
    assert "No environment &#x27;nope&#x27;" in page


def test_moving_the_end_from_the_page_says_the_new_end_and_a_refusal_says_why(
    slot: Reservation, admin_user: User
) -> None:
    client = admin_client(admin_user)
    new_end = timezone.localtime(slot.ends_at + timedelta(hours=1))
    response = client.post(
        reverse("trials:reservation-end", args=[slot.pk]),
        {"ends_at": new_end.strftime("%Y-%m-%dT%H:%M"), "note": "late start", "next": "/reservations/?view=all"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/reservations/?view=all"
    assert f"Reservation {slot.pk} now ends {new_end:%a %d %b %H:%M}." in response.content.decode()
    assert Reservation.objects.get(pk=slot.pk).ends_at == new_end
    short = client.post(
        reverse("trials:reservation-end", args=[slot.pk]),
        {"ends_at": timezone.localtime(slot.starts_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
        follow=True,
    )
    assert "The slot must be at least" in short.content.decode()
    garbled = client.post(reverse("trials:reservation-end", args=[slot.pk]), {"ends_at": "soon"}, follow=True)
    assert "ends_at: Enter a valid date/time." in garbled.content.decode()
    assert Reservation.objects.get(pk=slot.pk).ends_at == new_end
