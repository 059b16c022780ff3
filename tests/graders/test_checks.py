"""The system check that keeps the broker's visibility timeout above the longest scoring run."""

from __future__ import annotations

from graders.checks import visibility_timeout_exceeds_scoring


def test_a_visibility_timeout_shorter_than_a_scoring_run_is_a_warning(settings, tmp_path) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    [warning] = visibility_timeout_exceeds_scoring()
    assert warning.id == "graders.W001"
    assert "(300 s)" in warning.msg
    # The longest run is the longest of any package's own timeout, not just the default.
    slow = tmp_path / "grading_test_very_slow"
    slow.mkdir()
    (slow / "metadata.yaml").write_text("slug: grading_test_very_slow\nscore_timeout_seconds: 99999\n")
    settings.GRADING_PACKAGE_DIRS = [str(tmp_path)]
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 90000}
    [warning] = visibility_timeout_exceeds_scoring()
    assert "(99999 s)" in warning.msg


def test_the_default_four_hours_and_brokers_without_one_pass(settings) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
    assert visibility_timeout_exceeds_scoring() == []
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert visibility_timeout_exceeds_scoring() == []
