"""Workstations over the REST API: admins register, edit, drain; everyone else is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests import factories
from tests.factories import ClientFor
from trials.models import Workstation

pytestmark = pytest.mark.django_db

PAYLOAD_FIELDS = {
    "id",
    "name",
    "host",
    "ssh_port",
    "ssh_user",
    "gpu_count",
    "gpu_model",
    "queue_name",
    "backend",
    "status",
    "effective_status",
    "last_heartbeat_at",
    "created_at",
}


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "h200-x", "host": "h200-x.example.test", "gpu_count": 8, "gpu_model": "H200"}
    body.update(overrides)
    return body


def test_admin_lists_workstations_with_their_effective_status(api: ClientFor, admin_user, workstation) -> None:
    silent = factories.WorkstationFactory.create(name="silent", last_heartbeat_at=timezone.now() - timedelta(hours=1))
    response = api(admin_user).get("/api/workstations/")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows["h100-a"]) == PAYLOAD_FIELDS
    assert (rows["h100-a"]["status"], rows["h100-a"]["effective_status"]) == ("active", "active")
    assert (rows["silent"]["status"], rows["silent"]["effective_status"]) == ("active", "offline")
    assert rows["silent"]["last_heartbeat_at"] is not None
    assert silent.pk == rows["silent"]["id"]


@pytest.mark.parametrize("role", ["expert", "reviewer", "no_role_user"])
def test_non_admins_are_refused_workstations(api: ClientFor, request, workstation, role: str) -> None:
    client = api(request.getfixturevalue(role))
    assert client.get("/api/workstations/").status_code == 403
    assert client.get(f"/api/workstations/{workstation.pk}/").status_code == 403
    assert client.post("/api/workstations/", registration(), format="json").status_code == 403
    assert client.patch(f"/api/workstations/{workstation.pk}/", {"status": "offline"}, format="json").status_code == 403
    assert client.post(f"/api/workstations/{workstation.pk}/drain/").status_code == 403
    workstation.refresh_from_db()
    assert workstation.status == Workstation.Status.ACTIVE
    assert not Workstation.objects.filter(name="h200-x").exists()


def test_anonymous_user_gets_401_for_workstations(api: ClientFor, workstation) -> None:
    response = api(None).get("/api/workstations/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_admin_reads_one_workstation(api: ClientFor, admin_user, workstation) -> None:
    response = api(admin_user).get(f"/api/workstations/{workstation.pk}/")
    assert response.status_code == 200
    assert response.json()["name"] == "h100-a"


def test_unknown_workstation_id_is_404(api: ClientFor, admin_user) -> None:
    assert api(admin_user).get("/api/workstations/999999/").status_code == 404


def test_admin_registers_a_workstation_with_a_default_queue(api: ClientFor, admin_user) -> None:
    response = api(admin_user).post("/api/workstations/", registration(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["queue_name"] == "ws.h200-x"
    assert body["backend"] == "ssh"
    assert body["ssh_port"] == 22
    # Registered but never heard from: offline until its worker's first heartbeat.
    assert body["effective_status"] == "offline"
    assert body["last_heartbeat_at"] is None
    assert Workstation.objects.get(name="h200-x").gpu_model == "H200"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "h100-a"}, "name"),
        ({"name": "has spaces"}, "name"),
        ({"name": ""}, "name"),
        ({"queue_name": "ws.h100-a"}, "queue_name"),
        ({"backend": "telnet"}, "backend"),
        ({"gpu_count": -1}, "gpu_count"),
        ({"gpu_count": 100_000}, "gpu_count"),
        ({"gpu_count": "eight"}, "gpu_count"),
        ({"ssh_port": 0}, "ssh_port"),
        ({"ssh_port": 70_000}, "ssh_port"),
        ({"host": ""}, "host"),
        ({"host": "h" * 256}, "host"),
    ],
)
def test_malformed_registration_is_400_naming_the_field(
    api: ClientFor, admin_user, workstation, overrides: dict[str, Any], field: str
) -> None:
    response = api(admin_user).post("/api/workstations/", registration(**overrides), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    assert Workstation.objects.count() == 1


def test_registration_without_a_host_is_400_on_host(api: ClientFor, admin_user) -> None:
    body = registration()
    del body["host"]
    response = api(admin_user).post("/api/workstations/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"host"}
    assert not Workstation.objects.exists()


def test_admin_changes_the_status_and_other_fields(api: ClientFor, admin_user, workstation) -> None:
    body = {"status": "draining", "host": "10.0.0.7", "ssh_user": "trial"}
    response = api(admin_user).patch(f"/api/workstations/{workstation.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["effective_status"] == "draining"
    workstation.refresh_from_db()
    assert (workstation.status, workstation.host, workstation.ssh_user) == ("draining", "10.0.0.7", "trial")


def test_editing_a_workstation_keeps_its_heartbeat(api: ClientFor, admin_user, workstation) -> None:
    heartbeat = workstation.last_heartbeat_at
    api(admin_user).patch(f"/api/workstations/{workstation.pk}/", {"gpu_count": 4}, format="json")
    workstation.refresh_from_db()
    assert workstation.gpu_count == 4
    assert workstation.last_heartbeat_at == heartbeat


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "broken"}, "status"),
        ({"status": "draining", "name": "taken"}, "name"),
        ({"status": "offline", "queue_name": "ws.taken"}, "queue_name"),
        ({"status": "offline", "gpu_count": -2}, "gpu_count"),
        ({"ssh_port": 0}, "ssh_port"),
    ],
)
def test_bad_edit_is_400_and_changes_nothing(
    api: ClientFor, admin_user, workstation, body: dict[str, Any], field: str
) -> None:
    factories.WorkstationFactory.create(name="taken")
    response = api(admin_user).patch(f"/api/workstations/{workstation.pk}/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {field}
    workstation.refresh_from_db()
    assert (workstation.status, workstation.name, workstation.queue_name) == ("active", "h100-a", "ws.h100-a")


def test_put_is_not_offered(api: ClientFor, admin_user, workstation) -> None:
    response = api(admin_user).put(f"/api/workstations/{workstation.pk}/", registration(), format="json")
    assert response.status_code == 405


def test_admin_drains_a_workstation(api: ClientFor, admin_user, workstation) -> None:
    response = api(admin_user).post(f"/api/workstations/{workstation.pk}/drain/")
    assert response.status_code == 200
    assert response.json()["status"] == "draining"
    workstation.refresh_from_db()
    assert workstation.status == Workstation.Status.DRAINING


def test_workstation_list_takes_a_fixed_number_of_queries(
    api: ClientFor, admin_user, django_assert_max_num_queries
) -> None:
    for i in range(12):
        factories.WorkstationFactory.create(name=f"box-{i}")
    client = api(admin_user)
    with django_assert_max_num_queries(3):
        response = client.get("/api/workstations/")
    assert response.json()["count"] == 12
