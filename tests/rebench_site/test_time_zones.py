"""Times in the user's own zone: the profile's, else the browser's (the `tz` cookie), else TIME_ZONE."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from rebench_site.models import Profile
from tests import factories
from trials.models import Reservation

pytestmark = pytest.mark.django_db

# Upcoming for as long as this code lives, at a fixed UTC time: 12:00 UTC is 07:00 in New York, 21:00 in Tokyo.
NOON_UTC = datetime(2200, 1, 15, 12, 0, tzinfo=UTC)


def logged_in(user, tz: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if tz is not None:
        client.cookies["tz"] = tz
    return client


@pytest.fixture
def booked(expert, workstation):
    return factories.ReservationFactory.create(expert=expert, workstation=workstation, starts_at=NOON_UTC)


def slot_cell(page: str) -> str:
    row = page.split("data-reservation=", 1)[1]
    return row.split("</tr>", 1)[0]


def test_the_browsers_zone_from_the_cookie_is_the_one_the_page_shows_and_names(expert, booked) -> None:
    response = logged_in(expert, tz="America/New_York").get("/my/")
    assert response.status_code == 200
    assert response.context["time_zone"] == "America/New_York"
    assert "Slot (America/New_York)" in response.content.decode()
    assert "Wed 15 Jan 2200 07:00" in slot_cell(response.content.decode())


def test_the_profiles_zone_wins_over_the_browsers(expert, booked) -> None:
    Profile.objects.create(user=expert, time_zone="Asia/Tokyo")
    response = logged_in(expert, tz="America/New_York").get("/my/")
    assert response.context["time_zone"] == "Asia/Tokyo"
    assert "Wed 15 Jan 2200 21:00" in slot_cell(response.content.decode())


def test_a_blank_profile_zone_leaves_the_browsers_in_force(expert, booked) -> None:
    Profile.objects.create(user=expert, time_zone="")
    response = logged_in(expert, tz="America/New_York").get("/my/")
    assert response.context["time_zone"] == "America/New_York"


def test_without_a_cookie_or_profile_the_page_shows_the_sites_zone(expert, booked) -> None:
    response = logged_in(expert).get("/my/")
    assert response.context["time_zone"] == settings.TIME_ZONE


def test_a_cookie_naming_no_zone_falls_back_to_the_sites_zone_and_the_page_loads(expert, booked) -> None:
    response = logged_in(expert, tz="Mars/Olympus_Mons").get("/my/")
    assert response.status_code == 200
    assert response.context["time_zone"] == settings.TIME_ZONE


def test_the_zone_is_the_requests_alone_and_code_after_it_is_back_on_the_sites(expert, booked) -> None:
    logged_in(expert, tz="Asia/Tokyo").get("/my/")
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE


def test_the_api_keeps_the_sites_zone_whatever_the_browser_says(expert, booked) -> None:
    response = logged_in(expert, tz="Asia/Tokyo").get(f"/api/reservations/{booked.pk}/")
    assert response.status_code == 200
    assert response.json()["starts_at"] in {"2200-01-15T12:00:00Z", "2200-01-15T12:00:00+00:00"}


def next_january_15(now: datetime) -> datetime:
    year = now.year + 1 if (now.month, now.day) >= (1, 14) else now.year
    return datetime(year, 1, 15)


def test_a_booking_at_nine_by_a_user_in_berlin_in_winter_is_stored_as_eight_utc(
    expert, env_cumsum, workstation, settings
) -> None:
    settings.BOOKING_HORIZON_DAYS = 400  # the next 15 January may be most of a year away
    day = next_january_15(timezone.now())
    client = logged_in(expert, tz="Europe/Berlin")
    response = client.post(
        f"/book/{env_cumsum.slug}/",
        {"workstation": workstation.pk, "starts_at": day.strftime("%Y-%m-%dT09:00")},
        follow=True,
    )
    assert response.status_code == 200
    assert Reservation.objects.get().starts_at == datetime(day.year, 1, 15, 8, 0, tzinfo=UTC)
    # The confirmation is in the user's zone too.
    assert f"from {day:%a} 15 Jan 09:00." in response.content.decode()


def test_the_settings_page_saves_a_zone_and_the_next_page_shows_it(expert) -> None:
    client = logged_in(expert, tz="America/New_York")
    page = client.get("/accounts/time-zone/")
    assert page.status_code == 200
    assert "Browser&#x27;s (currently America/New_York)" in page.content.decode()
    response = client.post("/accounts/time-zone/", {"time_zone": "Pacific/Auckland"})
    assert response.status_code == 302
    assert Profile.objects.get(user=expert).time_zone == "Pacific/Auckland"
    assert client.get("/my/").context["time_zone"] == "Pacific/Auckland"


def test_the_settings_page_goes_back_to_the_browsers_zone_on_the_blank_choice(expert) -> None:
    Profile.objects.create(user=expert, time_zone="Asia/Tokyo")
    client = logged_in(expert, tz="America/New_York")
    assert client.post("/accounts/time-zone/", {"time_zone": ""}).status_code == 302
    assert Profile.objects.get(user=expert).time_zone == ""
    assert client.get("/my/").context["time_zone"] == "America/New_York"


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_every_role_may_pick_a_zone(role: str) -> None:
    user = getattr(factories, role)(username=f"{role}-1")
    response = logged_in(user).post("/accounts/time-zone/", {"time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    assert Profile.objects.get(user=user).time_zone == "Europe/Berlin"


def test_the_settings_page_sends_an_anonymous_visitor_to_log_in(db) -> None:
    response = Client().post("/accounts/time-zone/", {"time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Profile.objects.exists()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "localtime", "../../etc/passwd", "A" * 5000])
def test_a_zone_not_on_the_list_is_a_400_naming_the_problem_and_nothing_is_saved(expert, zone: str) -> None:
    Profile.objects.create(user=expert, time_zone="Asia/Tokyo")
    response = logged_in(expert).post("/accounts/time-zone/", {"time_zone": zone})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Profile.objects.get(user=expert).time_zone == "Asia/Tokyo"


def test_the_header_links_the_zone_page_next_to_change_password(expert) -> None:
    page = logged_in(expert, tz="Europe/Berlin").get("/my/").content.decode()
    assert 'href="/accounts/time-zone/" id="time-zone"' in page
    assert page.index('id="time-zone"') < page.index('id="change-password"')


def test_an_admin_booking_on_the_schedule_is_read_in_the_admins_zone_and_lands_on_that_day(
    admin_user, expert, env_cumsum, workstation, settings
) -> None:
    settings.BOOKING_HORIZON_DAYS = 400
    day = next_january_15(timezone.now())
    Profile.objects.create(user=admin_user, time_zone="Asia/Tokyo")
    response = logged_in(admin_user).post(
        "/schedule/",
        {
            "expert": expert.pk,
            "environment": env_cumsum.slug,
            "workstation": workstation.pk,
            "starts_at": day.strftime("%Y-%m-%dT06:00"),
        },
    )
    assert response.status_code == 302
    # 06:00 in Tokyo (UTC+9) is 21:00 UTC the day before; the schedule opens on the Tokyo day.
    assert Reservation.objects.get().starts_at == datetime(day.year, 1, 14, 21, 0, tzinfo=UTC)
    assert response["Location"].endswith(f"?day={day:%Y}-01-15")


def test_a_session_from_before_the_zone_was_kept_in_it_reads_the_profile(expert, booked) -> None:
    client = logged_in(expert)
    session = client.session
    del session["time_zone"]
    session.save()
    Profile.objects.create(user=expert, time_zone="Asia/Tokyo")
    assert client.get("/my/").context["time_zone"] == "Asia/Tokyo"
    assert client.session["time_zone"] == "Asia/Tokyo"
