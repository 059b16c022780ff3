"""Pages: booking and attempt forms with bad input, and query counts on list pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests import factories
from trials.models import Attempt, Note, Reservation, Workstation

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def local_iso(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_expert_books_a_free_slot_from_the_day_view(expert, env_cumsum, workstation) -> None:
    start = (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    response = logged_in(expert).post(
        f"/book/{env_cumsum.slug}/", {"workstation": workstation.pk, "starts_at": local_iso(start)}
    )
    assert response.status_code == 302
    reservation = Reservation.objects.get()
    assert reservation.starts_at == start
    assert reservation.ends_at == start + env_cumsum.time_limit + timedelta(minutes=30)


def test_the_another_start_time_form_starts_on_the_only_workstation_that_fits(expert, env_cumsum, workstation) -> None:
    page = logged_in(expert).get(f"/book/{env_cumsum.slug}/").content.decode()
    assert f'<option value="{workstation.pk}" selected>' in page


def test_booking_in_the_past_shows_the_error_in_the_page_and_writes_nothing(expert, env_cumsum, workstation) -> None:
    start = timezone.now() - timedelta(hours=3)
    response = logged_in(expert).post(
        f"/book/{env_cumsum.slug}/", {"workstation": workstation.pk, "starts_at": local_iso(start)}
    )
    assert response.status_code == 400
    assert "in the past" in response.content.decode()
    assert Reservation.objects.count() == 0


def test_booking_an_overlapping_slot_shows_the_error_and_writes_nothing(
    expert, other_expert, env_cumsum, workstation
) -> None:
    start = (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    factories.ReservationFactory.create(expert=other_expert, workstation=workstation, starts_at=start)
    response = logged_in(expert).post(
        f"/book/{env_cumsum.slug}/",
        {"workstation": workstation.pk, "starts_at": local_iso(start + timedelta(hours=2))},
    )
    assert response.status_code == 400
    assert "already booked" in response.content.decode()
    assert Reservation.objects.count() == 1


def test_the_booking_pages_say_how_many_attempts_are_left_and_a_second_booking_is_refused_in_the_page(
    expert, env_cumsum, workstation
) -> None:
    client = logged_in(expert)
    choose = client.get("/book/").content.decode()
    assert "1 left to you" in choose
    assert f'data-book="{env_cumsum.slug}"' in choose
    start = (timezone.now() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    first = factories.ReservationFactory.create(
        expert=expert, environment=env_cumsum, workstation=workstation, starts_at=start
    )

    choose = client.get("/book/").content.decode()
    assert "you have booked or made yours" in choose
    assert f'data-book="{env_cumsum.slug}"' not in choose
    assert "data-limit-reached" in client.get(f"/book/{env_cumsum.slug}/").content.decode()
    response = client.post(
        f"/book/{env_cumsum.slug}/", {"workstation": workstation.pk, "starts_at": local_iso(first.ends_at)}
    )
    assert response.status_code == 400
    assert "the study allows 1 per expert" in response.content.decode()
    assert Reservation.objects.count() == 1


def test_booking_with_a_garbled_start_time_is_a_form_error(expert, env_cumsum, workstation) -> None:
    response = logged_in(expert).post(f"/book/{env_cumsum.slug}/", {"workstation": workstation.pk, "starts_at": "soon"})
    assert response.status_code == 400
    assert "Enter a valid date/time" in response.content.decode()
    assert Reservation.objects.count() == 0


def test_workstations_without_the_gpus_are_not_offered(expert, db) -> None:
    environment = factories.environment("ai_rd_small_scaling_law")  # needs 6-8 GPUs
    factories.WorkstationFactory.create(name="small-box", gpu_count=4)
    factories.WorkstationFactory.create(name="big-box", gpu_count=8)
    page = logged_in(expert).get(f"/book/{environment.slug}/").content.decode()
    assert 'data-workstation="big-box"' in page
    assert 'data-workstation="small-box"' not in page


def test_a_silent_workstation_offers_no_free_slots(expert, env_cumsum) -> None:
    factories.WorkstationFactory.create(name="quiet", last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    page = logged_in(expert).get(f"/book/{env_cumsum.slug}/?day={tomorrow}").content.decode()
    assert "badge offline" in page
    assert "data-slot=" not in page


def test_a_bad_day_parameter_falls_back_to_today_with_a_message(expert, env_cumsum, workstation) -> None:
    response = logged_in(expert).get(f"/book/{env_cumsum.slug}/?day=tomorrowish", follow=True)
    assert response.status_code == 200
    assert "is not a date" in response.content.decode()


def test_starting_an_attempt_before_the_slot_opens_is_refused_with_a_message(expert, workstation) -> None:
    reservation = factories.ReservationFactory.create(
        expert=expert, workstation=workstation, starts_at=timezone.now() + timedelta(hours=2)
    )
    response = logged_in(expert).post(f"/reservations/{reservation.pk}/start/", follow=True)
    assert "The slot opens at" in response.content.decode()
    assert Attempt.objects.count() == 0


def test_resuming_a_submitted_attempt_is_refused_with_a_message(expert) -> None:
    attempt = factories.AttemptFactory.create(reservation__expert=expert)
    client = logged_in(expert)
    client.post(f"/attempts/{attempt.pk}/submit/")
    response = client.post(f"/attempts/{attempt.pk}/resume/", follow=True)
    assert "The attempt has ended" in response.content.decode()


def test_an_empty_note_is_answered_with_the_error_in_the_htmx_partial(expert) -> None:
    attempt = factories.AttemptFactory.create(reservation__expert=expert)
    response = logged_in(expert).post(f"/attempts/{attempt.pk}/notes/", {"body": "   "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert Note.objects.count() == 0


def test_the_clock_endpoint_reports_the_servers_numbers(expert) -> None:
    attempt = factories.AttemptFactory.create(
        reservation__expert=expert, started_at=timezone.now() - timedelta(hours=1)
    )
    data = logged_in(expert).get(f"/attempts/{attempt.pk}/clock/").json()
    assert data["state"] == "running"
    assert 3599 <= data["elapsed_seconds"] <= 3605
    assert 7 * 3600 - 5 <= data["remaining_seconds"] <= 7 * 3600 + 1


def test_admin_drains_a_workstation_from_its_page(admin_user, workstation) -> None:
    response = logged_in(admin_user).post(f"/workstations/{workstation.pk}/", {"status": "draining"})
    assert response.status_code == 302
    workstation.refresh_from_db()
    assert workstation.status == Workstation.Status.DRAINING


def test_admin_registers_a_workstation_and_a_duplicate_name_is_a_form_error(admin_user, workstation) -> None:
    client = logged_in(admin_user)
    form = {
        "name": "h100-b",
        "host": "h100-b.lab",
        "gpu_count": 4,
        "gpu_model": "H100",
        "backend": "ssh",
        "ssh_port": 22,
    }
    assert client.post("/workstations/", form).status_code == 302
    assert Workstation.objects.get(name="h100-b").queue_name == "ws.h100-b"
    response = client.post("/workstations/", {**form, "name": workstation.name})
    assert response.status_code == 400
    assert Workstation.objects.count() == 2


def test_admin_books_for_an_expert_on_the_schedule(admin_user, expert, env_cumsum, workstation) -> None:
    start = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    response = logged_in(admin_user).post(
        "/schedule/",
        {
            "expert": expert.pk,
            "environment": env_cumsum.slug,
            "workstation": workstation.pk,
            "starts_at": local_iso(start),
        },
    )
    assert response.status_code == 302
    reservation = Reservation.objects.get()
    assert reservation.expert == expert
    assert reservation.created_by == admin_user


def make_attempts(count: int, workstation: Workstation, first_day: int = 0) -> None:
    """Attempts on one workstation, a day apart: PostgreSQL refuses overlapping slots."""
    for i in range(first_day, first_day + count):
        attempt = factories.AttemptFactory.create(
            reservation__workstation=workstation,
            reservation__starts_at=timezone.now() - timedelta(hours=1) + timedelta(days=i),
        )
        attempt.pauses.create(
            reason="break", started_at=attempt.started_at, ended_at=attempt.started_at + timedelta(minutes=1)
        )


@pytest.mark.parametrize("path", ["/attempts/", "/schedule/", "/workstations/"])
def test_admin_list_pages_use_a_fixed_number_of_queries(
    admin_user, workstation, path, django_assert_max_num_queries
) -> None:
    client = logged_in(admin_user)
    make_attempts(2, workstation)
    with django_assert_max_num_queries(12) as few:
        client.get(path)
    make_attempts(6, workstation, first_day=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(path).status_code == 200


def test_my_trials_uses_a_fixed_number_of_queries(expert, workstation, django_assert_max_num_queries) -> None:
    client = logged_in(expert)
    factories.AttemptFactory.create(reservation__expert=expert, reservation__workstation=workstation)
    with django_assert_max_num_queries(12) as few:
        client.get("/my/")
    for day in range(1, 5):
        factories.AttemptFactory.create(
            reservation__expert=expert,
            reservation__workstation=workstation,
            reservation__starts_at=timezone.now() + timedelta(days=day),
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/my/").status_code == 200


def test_past_booked_and_own_hours_are_drawn_apart(expert, other_expert, env_cumsum, workstation) -> None:
    now = timezone.now()
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    Reservation.objects.create(
        expert=other_expert,
        workstation=workstation,
        environment=env_cumsum,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        created_by=other_expert,
    )
    day = timezone.localtime(start).date().isoformat()
    page = logged_in(expert).get(f"/book/{env_cumsum.slug}/", {"day": day}).content.decode()
    assert 'data-why="booked"' in page
    if timezone.localtime(now).date().isoformat() == day and timezone.localtime(now).hour > 0:
        assert 'data-why="past"' in page  # some hour of today is already over


def test_the_attempt_list_filters_searches_and_pages(admin_user, workstation) -> None:
    from tests.leaderboards.leaderboard_data import ended_run

    chat = factories.environment("ai_rd_nanogpt_chat_rl")
    for i in range(55):
        ended_run(chat, [(1, 0.6)], agent=(f"agent-{i}", "m", ""))
    ended_run(chat, [(1, 0.6)], label="grace-imported")
    client = logged_in(admin_user)

    first = client.get("/attempts/").content.decode()
    assert "56 attempts; page 1 of 2." in first
    assert 'rel="next"' in first
    assert "grace-imported" in client.get("/attempts/", {"q": "grace"}).content.decode()
    assert "agent-3" not in client.get("/attempts/", {"q": "grace"}).content.decode()
    assert "1 attempt match." in client.get("/attempts/", {"q": "agent-12"}).content.decode()
    assert "No attempt matches." in client.get("/attempts/", {"status": "running"}).content.decode()

    refused = client.get("/attempts/", {"status": "exploded", "page": "zzz"})
    assert refused.status_code == 200
    assert "No status &#x27;exploded&#x27;: showing every status." in refused.content.decode()
