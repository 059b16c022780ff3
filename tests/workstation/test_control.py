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


def test_a_lease_the_server_stopped_renewing_freezes_the_sandbox_when_it_runs_out() -> None:
    running = {"deadline": NOW + 3600, "lease_until": NOW + 120}
    assert frozen_reason(running, NOW) is None
    assert next_change(running, NOW) == NOW + 120
    assert frozen_reason(running, NOW + 120) == "unreachable"
    # A break with background work allowed still stops at the lease's end; a pause keeps its own reason.
    assert frozen_reason({"paused": "break", "break_background": True, "lease_until": NOW - 1}, NOW) == "unreachable"
    assert frozen_reason({"paused": "scoring", "lease_until": NOW - 1}, NOW) == "scoring"
    # No lease (an older server's word): nothing runs out.
    assert next_change({"deadline": NOW + 60}, NOW) == NOW + 60
