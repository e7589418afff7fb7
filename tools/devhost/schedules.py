"""Timer schedules as the timers extension reads them: NCRONTAB expressions (with seconds) and TimeSpans."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from tools.devhost.errors import StartupError

_NAMES = {
    4: {m.lower(): i for i, m in enumerate(
        ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]) if m},
    5: {d.lower(): i for i, d in enumerate(["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"])},
}
# second, minute, hour, day of month, month, day of week (0 = Sunday), as NCrontab numbers them.
_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_FIELD_NAMES = ["second", "minute", "hour", "day", "month", "day of week"]
_SEARCH_LIMIT_DAYS = 366 * 5  # NCrontab gives up after its end date; "0 0 0 30 2 *" never occurs


@dataclass(frozen=True)
class CronSchedule:
    """An NCRONTAB expression: six fields with seconds, or five without (then second 0).

    Day of month and day of week must both match (NCrontab's rule, unlike Unix cron's either-or).
    """

    text: str
    fields: tuple[frozenset[int], ...]

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first occurrence strictly after `moment` (UTC), at whole seconds."""
        t = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        seconds, minutes, hours, days, months, weekdays = self.fields
        end = moment + datetime.timedelta(days=_SEARCH_LIMIT_DAYS)
        while t < end:
            if t.month not in months:
                t = _start_of_next_month(t)
            elif t.day not in days or (t.weekday() + 1) % 7 not in weekdays:
                t = (t + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in hours:
                t = (t + datetime.timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in minutes:
                t = (t + datetime.timedelta(minutes=1)).replace(second=0)
            elif t.second not in seconds:
                t += datetime.timedelta(seconds=1)
            else:
                return t
        raise StartupError(f"the schedule '{self.text}' has no occurrence in the next {_SEARCH_LIMIT_DAYS} days")


@dataclass(frozen=True)
class ConstantSchedule:
    """A TimeSpan schedule ("00:00:30"): every interval from the previous run."""

    text: str
    interval_s: float

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        return moment + datetime.timedelta(seconds=self.interval_s)


Schedule = CronSchedule | ConstantSchedule


def parse_schedule(text: str, *, function: str, parse_timespan: Callable[[str, str], float]) -> Schedule:
    """What TimerSchedule.Create accepts: an NCRONTAB expression, else a TimeSpan."""
    parts = text.split()
    if len(parts) in (5, 6):
        if len(parts) == 5:
            parts = ["0", *parts]
        try:
            fields = tuple(_field(part, index) for index, part in enumerate(parts))
        except ValueError as exc:
            raise StartupError(f"The '{function}' function is in error: '{text}' is not a valid NCRONTAB "
                               f"expression: {exc}") from None
        return CronSchedule(text, fields)
    if ":" in text:
        interval = parse_timespan(text, f"schedule of function '{function}'")
        if interval <= 0:
            raise StartupError(f"The '{function}' function is in error: the TimeSpan schedule '{text}' "
                               "must be positive")
        return ConstantSchedule(text, interval)
    raise StartupError(f"The '{function}' function is in error: '{text}' is neither an NCRONTAB expression "
                       "(6 fields with seconds, or 5) nor a TimeSpan (hh:mm:ss)")


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = _number(step_text, index) if step_text else 1
        if step < 1:
            raise ValueError(f"the step in '{item}' ({_FIELD_NAMES[index]}) must be at least 1")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = _number(first, index), _number(last, index)
        else:
            start = _number(base, index)
            stop = high if step_text else start  # "5/15": from 5 to the end, every 15
        if not low <= start <= stop <= high:
            raise ValueError(f"'{item}' is outside {low}-{high} ({_FIELD_NAMES[index]}) or runs backwards")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def _number(text: str, index: int) -> int:
    name = text.strip().lower()[:3]
    if index in _NAMES and name in _NAMES[index]:
        return _NAMES[index][name]
    if not re.fullmatch(r"\d+", text.strip()):
        raise ValueError(f"'{text}' is not a number ({_FIELD_NAMES[index]})")
    return int(text)


def _start_of_next_month(t: datetime.datetime) -> datetime.datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
