"""The attempt clock (trials.clock): worked examples, and properties checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trials import clock
from trials.clock import Span

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LIMIT = timedelta(hours=8)


def at(minutes: float) -> datetime:
    """The moment `minutes` after T0 (negative: before it)."""
    return T0 + timedelta(minutes=minutes)


def span(start_min: float, end_min: float | None) -> Span:
    return Span(at(start_min), None if end_min is None else at(end_min))


# --- elapsed -------------------------------------------------------------------------------------


def test_elapsed_without_pauses_is_the_wall_time_since_the_start() -> None:
    assert clock.elapsed(T0, [], at(90)) == timedelta(minutes=90)


def test_elapsed_is_zero_before_the_start() -> None:
    assert clock.elapsed(T0, [], at(-5)) == timedelta(0)
    assert clock.elapsed(T0, [], T0) == timedelta(0)


def test_a_closed_pause_is_taken_off_the_elapsed_time() -> None:
    assert clock.elapsed(T0, [span(30, 45)], at(90)) == timedelta(minutes=75)


def test_an_open_pause_stops_the_clock_from_its_start() -> None:
    pauses = [span(30, 45), span(60, None)]
    assert clock.elapsed(T0, pauses, at(60)) == timedelta(minutes=45)
    assert clock.elapsed(T0, pauses, at(600)) == timedelta(minutes=45)


def test_a_pause_still_going_at_now_only_counts_up_to_now() -> None:
    assert clock.elapsed(T0, [span(30, 90)], at(60)) == timedelta(minutes=30)


def test_overlapping_pauses_are_counted_once() -> None:
    # An admin's technical pause laid over the expert's break, and one nested inside it.
    pauses = [span(30, 60), span(45, 75), span(50, 55)]
    assert clock.elapsed(T0, pauses, at(120)) == timedelta(minutes=120 - 45)


def test_an_open_pause_overlapping_a_closed_one_stops_the_clock_at_the_earlier_start() -> None:
    pauses = [span(30, 60), span(40, None)]
    assert clock.elapsed(T0, pauses, at(500)) == timedelta(minutes=30)


def test_pauses_before_the_start_are_ignored_and_straddling_ones_count_from_the_start() -> None:
    assert clock.elapsed(T0, [span(-60, -30)], at(60)) == timedelta(minutes=60)
    assert clock.elapsed(T0, [span(-10, 10)], at(60)) == timedelta(minutes=50)


def test_elapsed_is_frozen_at_ended_at() -> None:
    pauses = [span(30, 40)]
    ended = at(100)
    frozen = clock.elapsed(T0, pauses, ended)
    assert frozen == timedelta(minutes=90)
    assert clock.elapsed(T0, pauses, at(1000), ended_at=ended) == frozen
    assert clock.elapsed(T0, pauses, at(50), ended_at=ended) == timedelta(minutes=40)


def test_a_zero_length_pause_changes_nothing() -> None:
    assert clock.elapsed(T0, [span(30, 30)], at(60)) == timedelta(minutes=60)
    assert clock.deadline(T0, LIMIT, [span(30, 30)]) == T0 + LIMIT


# --- deadline ------------------------------------------------------------------------------------


def test_the_deadline_without_pauses_is_start_plus_limit() -> None:
    assert clock.deadline(T0, LIMIT, []) == T0 + LIMIT


def test_a_closed_pause_pushes_the_deadline_by_its_length() -> None:
    assert clock.deadline(T0, LIMIT, [span(60, 80)]) == T0 + LIMIT + timedelta(minutes=20)


def test_overlapping_pauses_push_the_deadline_by_their_union() -> None:
    assert clock.deadline(T0, LIMIT, [span(60, 80), span(70, 100)]) == T0 + LIMIT + timedelta(minutes=40)


def test_an_open_pause_begun_before_the_limit_leaves_no_deadline() -> None:
    assert clock.deadline(T0, LIMIT, [span(60, None)]) is None
    assert clock.deadline(T0, LIMIT, [span(60, 80), span(300, None)]) is None


def test_an_open_pause_begun_after_the_limit_was_reached_does_not_matter() -> None:
    assert clock.deadline(T0, LIMIT, [span(8 * 60 + 1, None)]) == T0 + LIMIT


def test_a_pause_starting_exactly_at_the_deadline_does_not_move_it() -> None:
    assert clock.deadline(T0, LIMIT, [span(8 * 60, 8 * 60 + 30)]) == T0 + LIMIT
    assert clock.deadline(T0, LIMIT, [span(8 * 60, None)]) == T0 + LIMIT


def test_a_pause_spanning_the_would_be_deadline_pushes_it_past_the_pause() -> None:
    # Worked 7h50 by the pause's start; the last 10 minutes come after it ends.
    pauses = [span(470, 500)]
    assert clock.deadline(T0, LIMIT, pauses) == at(510)


def test_pauses_before_the_start_do_not_move_the_deadline() -> None:
    assert clock.deadline(T0, LIMIT, [span(-60, -30)]) == T0 + LIMIT
    assert clock.deadline(T0, LIMIT, [span(-10, 10)]) == T0 + LIMIT + timedelta(minutes=10)


def test_pauses_given_in_any_order_give_the_same_deadline() -> None:
    pauses = [span(200, 230), span(10, 20), span(100, 105)]
    assert clock.deadline(T0, LIMIT, pauses) == clock.deadline(T0, LIMIT, list(reversed(pauses)))
    assert clock.deadline(T0, LIMIT, pauses) == T0 + LIMIT + timedelta(minutes=45)


# --- properties ----------------------------------------------------------------------------------

MICROS_PER_HOUR = 3_600 * 1_000_000
offsets = st.integers(min_value=-2 * MICROS_PER_HOUR, max_value=16 * MICROS_PER_HOUR)
lengths = st.integers(min_value=0, max_value=3 * MICROS_PER_HOUR)


@st.composite
def pause_sets(draw: st.DrawFn) -> list[Span]:
    """Closed pauses anywhere around the attempt (overlapping or not), and at most one open pause."""
    spans = []
    for start, length in draw(st.lists(st.tuples(offsets, lengths), max_size=6)):
        begin = T0 + timedelta(microseconds=start)
        spans.append(Span(begin, begin + timedelta(microseconds=length)))
    open_start = draw(st.none() | offsets)
    if open_start is not None:
        spans.append(Span(T0 + timedelta(microseconds=open_start), None))
    return spans


limits = st.integers(min_value=1, max_value=10 * MICROS_PER_HOUR).map(lambda us: timedelta(microseconds=us))
moments = offsets.map(lambda us: T0 + timedelta(microseconds=us))


@given(limit=limits, pauses=pause_sets())
def test_property_at_the_deadline_the_clock_shows_exactly_the_time_limit(limit: timedelta, pauses: list[Span]) -> None:
    deadline = clock.deadline(T0, limit, pauses)
    if deadline is not None:
        assert clock.elapsed(T0, pauses, deadline) == limit
        # ...and not a microsecond earlier: the deadline is the first such moment.
        assert clock.elapsed(T0, pauses, deadline - timedelta(microseconds=1)) < limit


@given(limit=limits, pauses=pause_sets())
def test_property_no_deadline_means_an_open_pause_stopped_the_clock_short_of_the_limit(
    limit: timedelta, pauses: list[Span]
) -> None:
    if clock.deadline(T0, limit, pauses) is None:
        open_pauses = [p for p in pauses if p.end is None]
        assert open_pauses
        # However long we wait, the clock never reaches the limit.
        assert clock.elapsed(T0, pauses, T0 + timedelta(days=365)) < limit


@given(pauses=pause_sets(), a=moments, b=moments)
def test_property_elapsed_never_runs_backwards(pauses: list[Span], a: datetime, b: datetime) -> None:
    earlier, later = sorted((a, b))
    assert clock.elapsed(T0, pauses, earlier) <= clock.elapsed(T0, pauses, later)


@given(pauses=pause_sets(), now=moments)
def test_property_elapsed_lies_between_zero_and_the_wall_time_since_the_start(
    pauses: list[Span], now: datetime
) -> None:
    value = clock.elapsed(T0, pauses, now)
    assert timedelta(0) <= value <= max(now - T0, timedelta(0))


@given(pauses=pause_sets(), now=moments, ended=moments)
def test_property_elapsed_after_the_end_is_the_elapsed_at_the_end(
    pauses: list[Span], now: datetime, ended: datetime
) -> None:
    expected = clock.elapsed(T0, pauses, min(now, ended))
    assert clock.elapsed(T0, pauses, now, ended_at=ended) == expected


@given(limit=limits, pauses=pause_sets(), extra=lengths)
def test_property_more_pausing_never_brings_the_deadline_forward(
    limit: timedelta, pauses: list[Span], extra: int
) -> None:
    closed = [p for p in pauses if p.end is not None]
    added = Span(T0 + timedelta(hours=1), T0 + timedelta(hours=1, microseconds=extra))
    before = clock.deadline(T0, limit, closed)
    after = clock.deadline(T0, limit, [*closed, added])
    assert before is not None
    assert after is not None
    # Not by at most `extra`, either: a later pause that began just after the old deadline
    # counts once the deadline moves past its start.
    assert before <= after


@given(limit=limits, extra=lengths)
def test_property_a_single_pause_before_the_deadline_pushes_it_by_exactly_its_length(
    limit: timedelta, extra: int
) -> None:
    added = Span(T0 + timedelta(hours=1), T0 + timedelta(hours=1, microseconds=extra))
    pushed = timedelta(microseconds=extra) if timedelta(hours=1) < limit else timedelta(0)
    assert clock.deadline(T0, limit, [added]) == T0 + limit + pushed
