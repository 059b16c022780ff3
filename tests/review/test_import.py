"""Importing completions: JSONL and CSV, all or nothing, the bad line named; the command and the Celery job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from review import services
from review.models import Completion, ImportJob
from tests.trials.celery_support import BROKERS, broker_url, running_worker, using_broker, wait_for


@pytest.fixture(autouse=True)
def _media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def jsonl(*rows: Any) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode("utf-8") + b"\n"


def run(data: bytes, fmt: str = "jsonl", batch: str = "") -> ImportJob:
    job = services.import_job_create(
        created_by=None, upload=SimpleUploadedFile(f"in.{fmt}", data), fmt=fmt, batch=batch
    )
    return services.import_job_run(job_id=job.pk)


def test_jsonl_import_creates_every_completion(db) -> None:
    job = run(
        jsonl(
            {
                "prompt": "He climbed",
                "text": "the ladder and fell.",
                "source": "adversarial",
                "gold_label": "injurious",
            },
            {"prompt": "She sang", "text": "all night.", "id": "g-7"},
        ),
        batch="nov",
    )
    assert job.status == "done"
    assert job.created_count == 2
    assert job.percent == 100
    first, second = Completion.objects.order_by("id")
    assert (first.source, first.gold_label, first.batch) == ("adversarial", "injurious", "nov")
    assert (second.source, second.external_id) == ("in_distribution", "g-7")


def test_csv_import_reads_a_header_and_quoted_newlines(db) -> None:
    data = b'prompt,text,batch\n"He said","line one\nline two",b2\nx,y,\n'
    job = run(data, fmt="csv", batch="default")
    assert job.status == "done"
    assert list(Completion.objects.order_by("id").values_list("text", "batch")) == [
        ("line one\nline two", "b2"),
        ("y", "default"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (jsonl({"prompt": "p", "text": "ok"}, "{not json"), "line 2: not valid JSON"),
        (jsonl({"prompt": "p", "text": "ok"}, {"prompt": "p", "text": ""}), "line 2: text is empty"),
        (jsonl({"prompt": "p", "text": "ok"}, {"prompt": "p", "text": "   "}), "line 2: text is empty"),
        (jsonl({"prompt": "p", "text": "x" * (1024 * 1024)}), "line 1: text is 1,048,576 bytes"),
        (jsonl({"prompt": "p", "text": "ok"}, {"prompt": "p"}), "line 2: missing field 'text'"),
        (jsonl({"prompt": "p", "text": "ok", "source": "web"}), "line 1: source 'web' is not one of"),
        (jsonl({"prompt": "p", "text": "ok", "colour": "red"}), "line 1: unknown field(s): colour"),
        (jsonl({"prompt": "p", "text": "ok", "gold_label": "bad"}), "line 1: gold_label 'bad' is not one of"),
        (jsonl({"prompt": "p", "text": "ok"}) + b'{"prompt": "p", "text": "caf\xe9"}\n', "line 2: not valid UTF-8"),
        (jsonl({"prompt": "p", "text": 5}), "line 1: text must be a string"),
    ],
)
def test_a_bad_line_refuses_the_whole_file_and_names_the_line(db, data: bytes, message: str) -> None:
    job = run(data)
    assert job.status == "failed"
    assert message in job.error
    assert not Completion.objects.exists()


def test_a_bad_csv_row_is_named_by_its_line(db) -> None:
    job = run(b"prompt,text\na,b\nc,\n", fmt="csv")
    assert job.status == "failed"
    assert job.error == "line 3: text is empty"
    assert not Completion.objects.exists()
    header = run(b"prompt,body\na,b\n", fmt="csv")
    assert header.error == "line 1: header lacks text"


def test_an_empty_upload_is_refused_before_any_job(db) -> None:
    from rebench_site.errors import ServiceError

    with pytest.raises(ServiceError) as info:
        services.import_job_create(created_by=None, upload=SimpleUploadedFile("a.jsonl", b""))
    assert info.value.field == "file"
    assert not ImportJob.objects.exists()


def test_the_command_imports_and_reports_a_bad_line(db, tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl({"prompt": "p", "text": "t"}, {"prompt": "p", "text": "u"}))
    call_command("import_completions", str(good), "--batch", "cli")
    assert "imported 2 completions" in capsys.readouterr().out
    assert set(Completion.objects.values_list("batch", flat=True)) == {"cli"}
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl({"prompt": "p", "text": "t"}, {"prompt": "p", "text": ""}))
    with pytest.raises(CommandError, match=r"line 2: text is empty \(nothing imported\)"):
        call_command("import_completions", str(bad))
    assert Completion.objects.count() == 2


@pytest.fixture(params=BROKERS)
def celery_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Celery]:
    with using_broker(broker_url(request.param, tmp_path)) as app:
        yield app


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_upload_is_imported_by_a_real_celery_worker(celery_app: Celery) -> None:
    job = services.import_job_create(
        created_by=None,
        upload=SimpleUploadedFile("in.jsonl", jsonl(*[{"prompt": "p", "text": f"t{i}"} for i in range(5)])),
    )
    assert ImportJob.objects.get(pk=job.pk).status == "pending"
    with running_worker(celery_app, queues=["celery"]):
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == "done", timeout=60)
    assert Completion.objects.count() == 5
