"""The rule the keeper freezes by: the last control the server sent, and the clock."""

from __future__ import annotations

from workstation.sandbox import frozen_reason, next_change

NOW = 1_000_000.0


def test_a_running_attempt_before_its_deadline_runs() -> None:
    assert frozen_reason({"deadline": NOW + 60, "hard_stop": NOW + 600}, NOW) is None
    assert next_change({"deadline": NOW + 60, "hard_stop": NOW + 600}, NOW) == NOW + 60


def test_the_deadline_or_the_hard_stop_freezes_whatever_else_the_control_says() -> None:
    assert frozen_reason({"deadline": NOW}, NOW) == "deadline"
    assert frozen_reason({"deadline": None, "hard_stop": NOW - 1, "paused": "break"}, NOW) == "deadline"
    assert next_change({"deadline": NOW - 5}, NOW) is None


def test_a_pause_freezes_and_a_break_only_when_work_may_not_go_on() -> None:
    assert frozen_reason({"paused": "scoring"}, NOW) == "scoring"
    assert frozen_reason({"paused": "break"}, NOW) == "break"
    assert frozen_reason({"paused": "break", "break_background": True}, NOW) is None
    assert frozen_reason({"paused": "admin", "break_background": True}, NOW) == "admin"


def test_an_ended_attempt_is_frozen_for_good() -> None:
    assert frozen_reason({"ended": True, "deadline": NOW + 3600}, NOW) == "ended"
