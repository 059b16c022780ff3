"""What the heartbeat's inventory does on the server: GPU rows from nvidia-smi, their automatic problems (ECC
errors, a GPU not reported), an admin's problem that outlasts heartbeats, the disk, and the pages showing them."""

from __future__ import annotations

import copy
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from environments.models import Environment
from rebench_site.errors import ServiceError
from tests import factories
from tests.trials.booking_support import book, now, slot
from tests.trials.celery_support import broker_url, running_worker, using_broker, wait_for
from tests.workstation.nvidia_smi_support import GPU_LINES, stand_in_nvidia_smi
from trials import services
from trials.models import Gpu, Workstation
from workstation.agent.tasks import workstation_heartbeat

pytestmark = pytest.mark.django_db

__all__ = ["now", "slot"]  # the support module's fixtures, registered by import


def healthy(index: int, **changes: Any) -> dict[str, Any]:
    """One GPU as `workstation.inventory.report()` gives it."""
    gpu = {
        "index": index,
        "uuid": f"GPU-0000000{index}-aaaa-bbbb-cccc-ddddeeeeffff",
        "model": "NVIDIA H100 80GB HBM3",
        "memory_mb": 81559,
        "temperature_c": 35 + index,
        "ecc_errors": 0,
        "foreign_processes": [],
    }
    gpu.update(changes)
    return gpu


def inventory(gpus: list[dict[str, Any]] | None, **changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "gpus": gpus,
        "disk": {"path": "/srv/rebench/workspaces", "free_bytes": 700 * 2**30, "total_bytes": 2 * 2**40},
        "sandbox_problems": [],
        "notes": [],
    }
    report.update(changes)
    return report


def beat(workstation: Workstation, report: dict[str, Any]) -> None:
    assert services.workstation_record_heartbeat(workstation_id=workstation.pk, inventory=copy.deepcopy(report))


def problems(workstation: Workstation) -> dict[int, str]:
    return dict(Gpu.objects.filter(workstation=workstation).exclude(problem="").values_list("index", "problem"))


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_heartbeat_reporting_ecc_errors_on_gpu_0_makes_the_next_booking_get_gpu_1(
    env_cumsum: Environment, workstation: Workstation, expert: User, slot: datetime
) -> None:
    beat(workstation, inventory([healthy(0, ecc_errors=2), *(healthy(i) for i in range(1, 8))]))

    assert problems(workstation) == {0: "2 uncorrected ECC errors"}
    assert book(expert, env_cumsum, workstation, slot).gpus == [1]


def test_the_heartbeat_writes_what_nvidia_smi_says_of_each_gpu(workstation: Workstation) -> None:
    miner = {"pid": 4242, "user": "mallory", "command": "/opt/miner"}
    beat(workstation, inventory([healthy(i, foreign_processes=[miner] if i == 3 else []) for i in range(8)]))

    gpu = Gpu.objects.get(workstation=workstation, index=3)
    assert (gpu.model, gpu.uuid, gpu.memory_mb, gpu.temperature_c, gpu.ecc_errors) == (
        "NVIDIA H100 80GB HBM3",
        "GPU-00000003-aaaa-bbbb-cccc-ddddeeeeffff",
        81559,
        38,
        0,
    )
    assert gpu.foreign_processes == [miner]
    assert gpu.reported_at is not None
    # Processes that are no attempt's are shown, but don't take the GPU out of service by themselves.
    assert problems(workstation) == {}


def test_an_ecc_problem_clears_when_the_errors_are_gone(workstation: Workstation) -> None:
    beat(workstation, inventory([healthy(i, ecc_errors=1 if i == 5 else 0) for i in range(8)]))
    assert problems(workstation) == {5: "1 uncorrected ECC error"}

    beat(workstation, inventory([healthy(i) for i in range(8)]))
    assert problems(workstation) == {}


def test_a_gpu_nvidia_smi_no_longer_lists_is_out_of_service_until_it_is_back(workstation: Workstation) -> None:
    beat(workstation, inventory([healthy(i) for i in range(8) if i != 6]))
    assert problems(workstation) == {6: "not reported by nvidia-smi"}

    beat(workstation, inventory([healthy(i) for i in range(8)]))
    assert problems(workstation) == {}


def test_a_problem_an_admin_set_outlasts_healthy_heartbeats_until_an_admin_clears_it(
    workstation: Workstation, admin_user: User
) -> None:
    gpu = Gpu.objects.get(workstation=workstation, index=2)
    services.gpu_set_problem(gpu=gpu, problem="fan rattles; vendor ticket 81", by=admin_user)

    beat(workstation, inventory([healthy(i) for i in range(8)]))
    assert problems(workstation) == {2: "fan rattles; vendor ticket 81"}

    services.gpu_set_problem(gpu=gpu, problem="", by=admin_user)
    assert problems(workstation) == {}
    actions = list(AuditEvent.objects.order_by("at").values_list("action", "subject"))
    assert actions == [("gpu.problem_set", "h100-a GPU 2"), ("gpu.problem_clear", "h100-a GPU 2")]


def test_an_admin_clearing_their_reason_leaves_the_ecc_errors_the_host_reported(
    workstation: Workstation, admin_user: User
) -> None:
    beat(workstation, inventory([healthy(i, ecc_errors=7 if i == 1 else 0) for i in range(8)]))
    gpu = Gpu.objects.get(workstation=workstation, index=1)
    services.gpu_set_problem(gpu=gpu, problem="being replaced", by=admin_user)
    assert problems(workstation) == {1: "being replaced"}

    services.gpu_set_problem(gpu=gpu, problem="", by=admin_user)

    assert problems(workstation) == {1: "7 uncorrected ECC errors"}


def test_without_nvidia_smi_the_gpus_stay_as_declared_and_the_page_says_why(
    workstation: Workstation, admin_user: User
) -> None:
    note = "nvidia-smi not found: the GPUs are as the admin declared them"

    beat(workstation, inventory(None, notes=[note]))

    assert problems(workstation) == {}
    assert set(Gpu.objects.filter(workstation=workstation).values_list("model", flat=True)) == {"H100 80GB"}
    assert not Gpu.objects.filter(workstation=workstation, reported_at__isnull=False).exists()
    page = logged_in(admin_user).get(f"/workstations/{workstation.pk}/").content.decode()
    assert note in page


def test_a_gpu_beyond_the_declared_count_is_a_note_for_the_admin(workstation: Workstation) -> None:
    beat(workstation, inventory([healthy(i) for i in range(9)]))

    workstation.refresh_from_db()
    assert Gpu.objects.filter(workstation=workstation).count() == 8
    assert workstation.inventory_notes == [
        "nvidia-smi also reports GPU 8, beyond the 8 declared: raise the GPU count to book it"
    ]


def test_nonsense_in_a_report_is_stored_as_unknown_not_a_crash(workstation: Workstation) -> None:
    gpus = [healthy(i) for i in range(8)]
    gpus[0].update(memory_mb="lots", temperature_c=10**9, ecc_errors=True, foreign_processes=["pid 1"])
    garbage: list[Any] = ["not a gpu", {"index": "x"}]
    beat(workstation, inventory([*gpus, *garbage], disk={"free_bytes": -1}))

    gpu = Gpu.objects.get(workstation=workstation, index=0)
    assert (gpu.memory_mb, gpu.temperature_c, gpu.ecc_errors, gpu.foreign_processes) == (None, None, None, [])
    workstation.refresh_from_db()
    assert (workstation.disk_free_bytes, workstation.disk_total_bytes) == (None, None)


def test_the_disk_is_shown_on_the_workstation_page_and_the_list(workstation: Workstation, admin_user: User) -> None:
    beat(workstation, inventory([healthy(i) for i in range(8)]))
    workstation.refresh_from_db()
    assert (workstation.disk_free_bytes, workstation.disk_total_bytes) == (700 * 2**30, 2 * 2**40)

    client = logged_in(admin_user)
    for url in (f"/workstations/{workstation.pk}/", "/workstations/"):
        assert "700.0\xa0GB free of 2.0\xa0TB" in client.get(url).content.decode()


def test_the_sandbox_answer_in_the_report_is_recorded_with_it(workstation: Workstation) -> None:
    beat(workstation, inventory(None, sandbox_problems=["bubblewrap is not installed"]))

    workstation.refresh_from_db()
    assert workstation.sandbox_problems == ["bubblewrap is not installed"]
    assert not workstation.is_bookable()


def test_admin_takes_a_gpu_out_of_service_and_puts_it_back_on_the_workstation_page(
    workstation: Workstation, admin_user: User
) -> None:
    client = logged_in(admin_user)
    url = f"/workstations/{workstation.pk}/gpus/4/problem/"

    response = client.post(url, {"problem": "  reseating the card  "}, follow=True)
    assert response.status_code == 200
    assert problems(workstation) == {4: "reseating the card"}
    assert "GPU 4 is out of service: reseating the card." in response.content.decode()
    assert "(an admin's word)" in response.content.decode()

    response = client.post(url, {"problem": ""}, follow=True)
    assert problems(workstation) == {}
    assert "GPU 4 can be booked again." in response.content.decode()


def test_an_expert_cannot_take_a_gpu_out_of_service(workstation: Workstation, expert: User) -> None:
    response = logged_in(expert).post(f"/workstations/{workstation.pk}/gpus/0/problem/", {"problem": "mine now"})

    assert response.status_code == 403
    assert problems(workstation) == {}


def test_a_reason_too_long_is_refused_naming_the_field(workstation: Workstation, admin_user: User) -> None:
    response = logged_in(admin_user).post(
        f"/workstations/{workstation.pk}/gpus/0/problem/", {"problem": "x" * 201}, follow=True
    )

    assert response.status_code == 200
    assert "Problem: at most 200 characters (this one has 201)." in response.content.decode()
    assert problems(workstation) == {}
    with pytest.raises(ServiceError) as info:
        services.gpu_set_problem(gpu=Gpu.objects.get(workstation=workstation, index=0), problem="x" * 201)
    assert info.value.field == "problem"


def test_a_gpu_the_workstation_does_not_have_is_a_404(workstation: Workstation, admin_user: User) -> None:
    response = logged_in(admin_user).post(f"/workstations/{workstation.pk}/gpus/8/problem/", {"problem": "x"})

    assert response.status_code == 404


@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_task_on_the_workstations_worker_stores_its_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workstation = factories.WorkstationFactory.create(name="gpu-host", gpu_count=3, last_heartbeat_at=None)
    folder = stand_in_nvidia_smi(tmp_path / "bin", gpus=GPU_LINES)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    with using_broker(broker_url("sqla", tmp_path)) as app, running_worker(app, queues=[workstation.queue_name]):
        workstation_heartbeat.apply_async(args=(workstation.pk,), queue=workstation.queue_name)
        assert wait_for(lambda: Workstation.objects.get(pk=workstation.pk).last_heartbeat_at is not None, timeout=60)

    workstation.refresh_from_db()
    assert workstation.disk_total_bytes is not None
    assert workstation.disk_total_bytes > 0
    assert workstation.inventory_notes == []
    rows = list(Gpu.objects.filter(workstation=workstation).values_list("index", "model", "memory_mb", "problem"))
    assert rows == [
        (0, "NVIDIA H100 80GB HBM3", 81559, ""),
        (1, "NVIDIA H100 80GB HBM3", 81559, "3 uncorrected ECC errors"),
        (2, "NVIDIA GeForce RTX 4090", 24564, ""),
    ]
