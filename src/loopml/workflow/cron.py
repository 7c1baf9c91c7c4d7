"""Cron schedules: five fields (minute hour day-of-month month day-of-week), as crontab(5)
reads them, in a time zone.

Fields take ``*``, numbers, ranges ``1-5``, steps ``*/15`` or ``10-50/20``, lists ``1,15``
and names (``jan``, ``mon``); ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and
``@yearly`` are shorthands. When both day fields are restricted, a day matching either
one fires, as cron does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loopml.core.errors import InvalidInput

_SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))  # fmt: skip
_HORIZON = 366 * 4  # days searched for the next time (29 February comes once in four years)


@dataclass(frozen=True)
class Cron:
    """A parsed schedule; :meth:`next_after` gives the next time it fires."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool
    zone: ZoneInfo | timezone

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment`` (aware), in UTC."""
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        day = local.replace(hour=0, minute=0)
        for _ in range(_HORIZON):
            if day.month in self.months and self._day_matches(day):
                found = [t for t in self._times(day) if t > moment]
                if found:
                    return min(found)
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        raise InvalidInput(f"the schedule {self.text!r} never fires", field="schedule")

    def _times(self, day: datetime) -> list[datetime]:
        """The day's firings in UTC. A wall time skipped by a daylight-saving change maps
        to just after it; one that repeats fires once, or both times when the schedule
        runs every hour (else ``*/15`` would stop for the repeated hour)."""
        start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        shifts = start.utcoffset() != (start + timedelta(days=1)).utcoffset()
        every_hour = len(self.hours) == 24 and shifts  # the fold check only on change days
        times = []
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
                times.append(wall.astimezone(timezone.utc))
                if every_hour:
                    again = wall.replace(fold=1).astimezone(timezone.utc)
                    # Only a repeated wall time comes back to itself from its second instant.
                    back = again.astimezone(self.zone).replace(tzinfo=None, fold=0)
                    if again != times[-1] and back == wall.replace(tzinfo=None):
                        times.append(again)
        return times

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return in_week
        if self.any_weekday:
            return in_month
        return in_month or in_week


def parse_cron(text: str, zone: str = "UTC") -> Cron:
    """Parse ``text``; :class:`InvalidInput` names the field that is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a schedule is five cron fields, e.g. '*/15 * * * *'", field="schedule")
    expanded = _SHORTHANDS.get(text.strip().lower(), text)
    parts = expanded.split()
    if len(parts) != 5:
        raise InvalidInput(
            f"{text!r} has {len(parts)} fields; cron has five: minute hour day-of-month "
            "month day-of-week",
            field="schedule",
        )
    try:
        tz: ZoneInfo | timezone = timezone.utc if zone == "UTC" else ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {zone!r}", field="timezone") from None
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])  # 7 is Sunday too
    return Cron(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                parts[2] == "*", parts[4] == "*", tz)  # fmt: skip


def _field(text: str, name: str, low: int, high: int, names: list[str] | None) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) < 1):  # "*/" too
            raise InvalidInput(
                f"the {name} step must be a positive number in {text!r}", field="schedule"
            )
        step = int(step_text) if slash else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, name, names, low), _number(last, name, names, low)
        else:
            start = end = _number(body, name, names, low)
            if slash:
                end = high
        if not low <= start <= end <= high:
            raise InvalidInput(
                f"{item!r} is outside the {name} range {low}-{high}", field="schedule"
            )
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str, names: list[str] | None, low: int) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit():
        raise InvalidInput(f"{text!r} is not a {name}", field="schedule")
    return int(text)
