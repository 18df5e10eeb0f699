"""The late-file decision with a frozen clock: `now` is always given, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from sluiceway.arrival import (
    LATE,
    OK,
    WAITING,
    Arrival,
    arrival_from_feed,
    arrival_status,
    feed_arrival,
    packaged_feeds,
)
from sluiceway.errors import ConfigurationError

pytestmark = pytest.mark.unit

DAILY = Arrival("day", time(6, 0))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_before_the_due_time_without_a_file_it_is_waiting() -> None:
    status = arrival_status(DAILY, at("2026-12-06 04:10"), at("2026-12-07 05:59"))
    assert status.state == WAITING
    assert (status.window_start, status.due) == (at("2026-12-07 00:00"), at("2026-12-07 06:00"))
    assert status.late_since is None and not status.is_late
    assert status.age == timedelta(hours=25, minutes=49)


def test_a_file_completed_in_the_window_is_ok_before_and_after_the_due_time() -> None:
    for now in ("2026-12-07 03:00", "2026-12-07 06:00", "2026-12-07 23:59"):
        status = arrival_status(DAILY, at("2026-12-07 02:30"), at(now))
        assert status.state == OK, now
        assert status.late_since is None


def test_after_the_due_time_without_a_file_in_the_window_it_is_late() -> None:
    status = arrival_status(DAILY, at("2026-12-06 05:00"), at("2026-12-07 06:00"))
    assert status.state == LATE and status.is_late
    assert status.late_since == at("2026-12-07 06:00")
    # Yesterday's file, even a late one, does not count for today.
    assert arrival_status(DAILY, at("2026-12-06 23:59"), at("2026-12-07 06:01")).state == LATE


def test_a_late_file_clears_the_state_when_it_arrives() -> None:
    assert arrival_status(DAILY, at("2026-12-06 05:00"), at("2026-12-07 09:00")).state == LATE
    assert arrival_status(DAILY, at("2026-12-07 09:30"), at("2026-12-07 09:31")).state == OK


def test_late_stays_late_across_midnight_until_a_file_arrives() -> None:
    status = arrival_status(DAILY, at("2026-12-05 05:00"), at("2026-12-07 00:30"))
    assert status.state == LATE
    assert status.late_since == at("2026-12-06 06:00")
    assert status.window_start == at("2026-12-07 00:00")
    # Yesterday's file came (late, at 23:00): before today's due time it is waiting again.
    assert arrival_status(DAILY, at("2026-12-06 23:00"), at("2026-12-07 00:30")).state == WAITING


def test_windows_roll_over_month_and_year_ends() -> None:
    status = arrival_status(DAILY, at("2026-11-30 05:00"), at("2026-12-01 06:30"))
    assert (status.state, status.window_start) == (LATE, at("2026-12-01 00:00"))
    assert arrival_status(DAILY, at("2026-11-30 05:00"), at("2026-12-01 05:30")).state == WAITING
    new_year = arrival_status(DAILY, at("2026-12-31 05:00"), at("2027-01-01 07:00"))
    assert (new_year.state, new_year.late_since) == (LATE, at("2027-01-01 06:00"))
    leap = arrival_status(DAILY, at("2028-02-29 01:00"), at("2028-02-29 07:00"))
    assert (leap.state, leap.window_start) == (OK, at("2028-02-29 00:00"))


def test_a_first_day_with_no_history_waits_then_is_late() -> None:
    waiting = arrival_status(DAILY, None, at("2026-12-07 05:00"))
    assert (waiting.state, waiting.age, waiting.last_completed) == (WAITING, None, None)
    late = arrival_status(DAILY, None, at("2026-12-07 06:00"))
    assert (late.state, late.late_since) == (LATE, at("2026-12-07 06:00"))


def test_grace_moves_the_moment_a_file_is_late() -> None:
    graceful = Arrival("day", time(6, 0), timedelta(minutes=30))
    assert arrival_status(graceful, None, at("2026-12-07 06:29")).state == WAITING
    status = arrival_status(graceful, None, at("2026-12-07 06:30"))
    assert (status.state, status.due) == (LATE, at("2026-12-07 06:30"))


def test_weekday_feeds_expect_nothing_at_the_weekend_but_a_missing_friday_file_stays_late() -> None:
    business = Arrival(("mon", "tue", "wed", "thu", "fri"), time(6, 0))
    # 2026-12-04 is a Friday; its file came, so the weekend and Monday morning are calm.
    saturday = arrival_status(business, at("2026-12-04 05:00"), at("2026-12-05 12:00"))
    assert (saturday.state, saturday.window_start) == (OK, at("2026-12-04 00:00"))
    monday = arrival_status(business, at("2026-12-04 05:00"), at("2026-12-07 05:00"))
    assert (monday.state, monday.window_start) == (WAITING, at("2026-12-07 00:00"))
    # Friday's never came: late all weekend, and on Monday before its due time.
    sunday = arrival_status(business, at("2026-12-03 05:00"), at("2026-12-06 12:00"))
    assert (sunday.state, sunday.late_since) == (LATE, at("2026-12-04 06:00"))
    assert arrival_status(business, at("2026-12-03 05:00"), at("2026-12-07 05:00")).is_late


def test_hourly_feeds_are_due_minutes_past_each_hour_across_midnight() -> None:
    hourly = Arrival("hour", time(0, 20))
    assert arrival_status(hourly, at("2026-12-06 23:05"), at("2026-12-07 00:10")).state == WAITING
    status = arrival_status(hourly, at("2026-12-06 23:05"), at("2026-12-07 00:20"))
    assert (status.state, status.late_since) == (LATE, at("2026-12-07 00:20"))
    assert arrival_status(hourly, at("2026-12-07 00:25"), at("2026-12-07 00:40")).state == OK


def test_times_in_other_zones_are_compared_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    # 06:30 in Paris is 05:30 UTC: before the due time.
    now = datetime(2026, 12, 7, 6, 30, tzinfo=paris)
    assert arrival_status(DAILY, None, now).state == WAITING
    # A naive completion time is UTC, as the tables store it.
    naive = datetime(2026, 12, 7, 1, 0)
    assert arrival_status(DAILY, naive, at("2026-12-07 07:00")).state == OK


def test_the_arrival_table_is_read_from_a_parsed_feed() -> None:
    feed = {"arrival": {"every": ["fri", "mon"], "due_by_utc": "07:15", "grace_minutes": 10}}
    arrival = arrival_from_feed(feed, "feeds/x.toml")
    assert arrival == Arrival(("mon", "fri"), time(7, 15), timedelta(minutes=10))
    assert arrival_from_feed({"arrival": {"every": "hour", "due_by_utc": "00:45"}}, "f").every == (
        "hour"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"every": "week", "due_by_utc": "06:00"}, "every must be"),
        ({"every": ["monday"], "due_by_utc": "06:00"}, "every must be"),
        ({"every": "day", "due_by_utc": "6am"}, 'due_by_utc must be "HH:MM"'),
        ({"every": "day", "due_by_utc": "06:00:30"}, 'due_by_utc must be "HH:MM"'),
        ({"every": "hour", "due_by_utc": "06:00"}, "minutes past each hour"),
        ({"every": "day", "due_by_utc": "06:00", "grace_minutes": -5}, "grace_minutes"),
    ],
)
def test_a_wrong_arrival_table_names_the_file_and_the_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        arrival_from_feed({"arrival": table}, "feeds/x.toml")
    assert "feeds/x.toml" in str(raised.value)
    with pytest.raises(ConfigurationError, match=r"no \[arrival\] table"):
        arrival_from_feed({"feed": {}}, "feeds/x.toml")


def test_the_transactions_feed_is_due_daily_by_six_utc() -> None:
    assert "transactions" in packaged_feeds()
    namespace, arrival = feed_arrival("transactions")
    assert namespace == "sluiceway"
    assert arrival == Arrival("day", time(6, 0))
    with pytest.raises(ConfigurationError, match=r"known feeds: .*transactions"):
        feed_arrival("no_such_feed")
