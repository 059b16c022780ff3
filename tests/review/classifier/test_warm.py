"""The classifier is warmed in a web server's background at start-up, not in a reviewer's first request."""

from __future__ import annotations

import pytest

from review.classifier import runtime, warm


@pytest.mark.parametrize(
    ("setting", "argv", "environ", "wanted"),
    [
        ("auto", ["/srv/.venv/bin/uvicorn", "rebench_site.asgi:application"], {}, True),
        ("auto", ["/srv/.venv/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker"], {}, True),
        ("auto", ["/usr/lib/python3/site-packages/uvicorn/__main__.py", "app"], {}, True),
        ("auto", ["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),
        ("auto", ["manage.py", "runserver"], {}, False),  # the autoreloader's file watcher
        ("auto", ["manage.py", "migrate"], {}, False),
        ("auto", ["/srv/.venv/bin/celery", "-A", "rebench_site", "worker"], {}, False),
        ("auto", ["/srv/.venv/bin/pytest", "tests/review"], {}, False),
        ("auto", [], {}, False),
        ("", ["/srv/.venv/bin/uvicorn"], {}, True),
        ("0", ["/srv/.venv/bin/uvicorn"], {}, False),
        ("off", ["/srv/.venv/bin/uvicorn"], {}, False),
        ("1", ["manage.py", "shell"], {}, True),
        ("true", ["/srv/.venv/bin/celery", "worker"], {}, True),
    ],
)
def test_only_a_web_server_warms_the_classifier_unless_told(setting, argv, environ, wanted) -> None:
    assert warm.preload_wanted(setting, argv, environ) is wanted


@pytest.mark.django_db
def test_warm_up_loads_the_active_versions_head_and_encoder(active_classifier) -> None:
    runtime._HEADS.clear()
    assert not runtime.is_warm(active_classifier)
    assert runtime.warm_up() == active_classifier
    assert runtime.is_warm(active_classifier)


@pytest.mark.django_db(transaction=True)
def test_a_web_server_process_warms_up_in_a_background_thread(active_classifier, settings) -> None:
    settings.CLASSIFIER_PRELOAD = "auto"
    assert warm.warm_up_in_background(["/srv/.venv/bin/pytest"]) is None
    runtime._HEADS.clear()
    thread = warm.warm_up_in_background(["/srv/.venv/bin/uvicorn", "rebench_site.asgi:application"])
    assert thread is not None
    assert thread.daemon
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert runtime.is_warm(active_classifier)


@pytest.mark.django_db(transaction=True)
def test_a_failed_warm_up_is_logged_and_leaves_loading_to_first_use(classifier_settings, caplog) -> None:
    classifier_settings.CLASSIFIER_PRELOAD = "1"
    classifier_settings.CLASSIFIER_ENCODER_PATH = "/nonexistent/encoder"
    thread = warm.warm_up_in_background(["manage.py", "shell"])
    assert thread is not None
    thread.join(timeout=60)
    assert "classifier warm-up failed" in caplog.text
    assert "does not exist" in caplog.text
