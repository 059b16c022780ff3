"""The system check that keeps the broker's visibility timeout above the longest scoring run."""

from __future__ import annotations

from graders.checks import visibility_timeout_exceeds_scoring


def test_a_visibility_timeout_shorter_than_a_scoring_run_is_a_warning(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    [warning] = visibility_timeout_exceeds_scoring()
    assert warning.id == "graders.W001"
    assert "(600 s)" in warning.msg  # ai_rd_triton_cumsum's scorer may run 600 s


def test_the_default_four_hours_and_brokers_without_one_pass(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
    assert visibility_timeout_exceeds_scoring() == []
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert visibility_timeout_exceeds_scoring() == []
