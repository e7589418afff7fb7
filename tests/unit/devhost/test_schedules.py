"""NCRONTAB and TimeSpan schedules, read and stepped as the timers extension does."""

from __future__ import annotations

import datetime

import pytest

from tools.devhost.errors import StartupError
from tools.devhost.schedules import ConstantSchedule, CronSchedule, parse_schedule
from tools.devhost.settings import parse_timespan

T0 = datetime.datetime(2026, 12, 1, 10, 26, 25, 400000, tzinfo=datetime.UTC)


def parse(text: str) -> CronSchedule | ConstantSchedule:
    return parse_schedule(text, function="tick", parse_timespan=parse_timespan)


def occurrences(text: str, n: int, start: datetime.datetime = T0) -> list[str]:
    schedule, out, t = parse(text), [], start
    for _ in range(n):
        t = schedule.next_after(t)
        out.append(t.strftime("%a %Y-%m-%d %H:%M:%S"))
    return out


def test_every_minute_fires_at_second_zero_of_each_minute() -> None:
    assert occurrences("0 * * * * *", 2) == ["Tue 2026-12-01 10:27:00", "Tue 2026-12-01 10:28:00"]


def test_steps_ranges_and_lists_in_the_seconds_field() -> None:
    assert occurrences("*/20 * * * * *", 3) == ["Tue 2026-12-01 10:26:40", "Tue 2026-12-01 10:27:00",
                                                "Tue 2026-12-01 10:27:20"]
    assert occurrences("5,10-11 * * * * *", 3) == ["Tue 2026-12-01 10:27:05", "Tue 2026-12-01 10:27:10",
                                                   "Tue 2026-12-01 10:27:11"]
    assert occurrences("50/5 * * * * *", 3) == ["Tue 2026-12-01 10:26:50", "Tue 2026-12-01 10:26:55",
                                                "Tue 2026-12-01 10:27:50"]


def test_five_fields_mean_minutes_first_at_second_zero() -> None:
    assert occurrences("30 9 * * *", 1) == ["Wed 2026-12-02 09:30:00"]


def test_names_of_months_and_days_and_both_day_fields_must_match() -> None:
    assert occurrences("0 30 9 * * Mon-Fri", 1, datetime.datetime(2026, 12, 4, 10, tzinfo=datetime.UTC)) == [
        "Mon 2026-12-07 09:30:00"]
    # NCrontab ANDs day of month and day of week: the 13th that is a Friday.
    assert occurrences("0 0 0 13 * 5", 1) == ["Fri 2027-08-13 00:00:00"]
    assert occurrences("0 0 12 1 Jan *", 1) == ["Fri 2027-01-01 12:00:00"]


def test_a_timespan_is_an_interval_from_the_previous_run() -> None:
    schedule = parse("00:00:30")
    assert isinstance(schedule, ConstantSchedule) and schedule.next_after(T0) == T0 + datetime.timedelta(seconds=30)


@pytest.mark.parametrize("text", ["61 * * * * *", "* * * * *  * *", "*/0 * * * * *", "5-1 * * * * *", "every minute",
                                  "0 0 0 30 2 *"])
def test_an_invalid_or_impossible_schedule_stops_the_start_naming_the_function(text: str) -> None:
    with pytest.raises(StartupError, match=r"tick|schedule"):
        parse(text).next_after(T0)
