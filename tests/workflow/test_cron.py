"""Cron schedules of workflow triggers: the next firing of known schedules (steps, ranges,
lists, names, shorthands, either-day rule, leap days, month ends), strictly after the
moment given, in a time zone across daylight-saving changes, and errors naming the problem."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from loopml.core.errors import InvalidInput
from loopml.workflow.cron import parse_cron

UTC = timezone.utc
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def firings(text: str, after: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    """The next ``count`` firings of ``text`` after ``after``, each from the one before."""
    cron = parse_cron(text, zone)
    found = []
    for _ in range(count):
        after = cron.next_after(after)
        found.append(after)
    return found


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("* * * * *", at(2026, 1, 1, 10, 0), [at(2026, 1, 1, 10, 1), at(2026, 1, 1, 10, 2)]),
        (
            "*/15 * * * *",
            at(2026, 1, 1, 10, 7),
            [
                at(2026, 1, 1, 10, 15),
                at(2026, 1, 1, 10, 30),
                at(2026, 1, 1, 10, 45),
                at(2026, 1, 1, 11, 0),
            ],
        ),
        (
            "10-50/20 9-10 * * *",
            at(2026, 1, 1),
            [
                at(2026, 1, 1, 9, 10),
                at(2026, 1, 1, 9, 30),
                at(2026, 1, 1, 9, 50),
                at(2026, 1, 1, 10, 10),
                at(2026, 1, 1, 10, 30),
                at(2026, 1, 1, 10, 50),
                at(2026, 1, 2, 9, 10),
            ],
        ),
        (
            "5/20 0 * * *",  # a start with a step runs to the end of the range
            at(2026, 1, 1),
            [
                at(2026, 1, 1, 0, 5),
                at(2026, 1, 1, 0, 25),
                at(2026, 1, 1, 0, 45),
                at(2026, 1, 2, 0, 5),
            ],
        ),
        (
            "0 8,12,18 * * *",
            at(2026, 1, 1, 12, 0),
            [at(2026, 1, 1, 18), at(2026, 1, 2, 8), at(2026, 1, 2, 12)],
        ),
        (
            "30 6 1,15 * *",
            at(2026, 1, 1, 7),
            [at(2026, 1, 15, 6, 30), at(2026, 2, 1, 6, 30), at(2026, 2, 15, 6, 30)],
        ),
        ("0 0 1 jan,Jul *", NEW_YEAR, [at(2026, 7, 1), at(2027, 1, 1), at(2027, 7, 1)]),
        (
            "0 9 * * MON-wed",
            NEW_YEAR,
            [at(2026, 1, 5, 9), at(2026, 1, 6, 9), at(2026, 1, 7, 9), at(2026, 1, 12, 9)],
        ),
        ("0 12 * * 7", NEW_YEAR, [at(2026, 1, 4, 12), at(2026, 1, 11, 12)]),  # 7 is Sunday
        ("0 12 * * 0", NEW_YEAR, [at(2026, 1, 4, 12), at(2026, 1, 11, 12)]),
        ("0 12 * * 5-7", NEW_YEAR, [at(2026, 1, 2, 12), at(2026, 1, 3, 12), at(2026, 1, 4, 12)]),
        ("0 0 * * sun", NEW_YEAR, [at(2026, 1, 4), at(2026, 1, 11)]),
    ],
)
def test_known_schedules_fire_at_their_times(
    text: str, after: datetime, expected: list[datetime]
) -> None:
    assert firings(text, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("@hourly", at(2026, 1, 1, 10, 0, 1), [at(2026, 1, 1, 11), at(2026, 1, 1, 12)]),
        ("@daily", at(2026, 1, 1, 10), [at(2026, 1, 2), at(2026, 1, 3)]),
        ("@midnight", at(2026, 1, 1, 10), [at(2026, 1, 2)]),
        ("@weekly", NEW_YEAR, [at(2026, 1, 4), at(2026, 1, 11)]),  # Sundays
        ("@monthly", at(2026, 1, 31, 23), [at(2026, 2, 1), at(2026, 3, 1)]),
        ("@yearly", at(2026, 6, 1), [at(2027, 1, 1), at(2028, 1, 1)]),
        ("@annually", at(2026, 6, 1), [at(2027, 1, 1)]),
        ("@DAILY", at(2026, 1, 1, 10), [at(2026, 1, 2)]),
    ],
)
def test_shorthands_are_their_five_fields(
    text: str, after: datetime, expected: list[datetime]
) -> None:
    assert firings(text, after, len(expected)) == expected


def test_with_both_day_fields_restricted_either_one_fires() -> None:
    # The 13th of each month and every Friday, not only Friday the 13th (crontab(5)).
    found = firings("0 0 13 * fri", NEW_YEAR, 6)
    assert found == [at(2026, 1, 2), at(2026, 1, 9), at(2026, 1, 13), at(2026, 1, 16),
                     at(2026, 1, 23), at(2026, 1, 30)]  # fmt: skip
    # One day field left as * restricts by the other alone.
    assert firings("0 0 13 * *", NEW_YEAR, 2) == [at(2026, 1, 13), at(2026, 2, 13)]
    assert firings("0 0 * * fri", NEW_YEAR, 2) == [at(2026, 1, 2), at(2026, 1, 9)]


def test_29_february_fires_in_leap_years_only() -> None:
    assert firings("0 0 29 2 *", NEW_YEAR, 3) == [at(2028, 2, 29), at(2032, 2, 29), at(2036, 2, 29)]
    # A year with 29 February is found even from just after the last one.
    assert parse_cron("0 0 29 2 *").next_after(at(2024, 2, 29, 0, 1)) == at(2028, 2, 29)


def test_the_31st_skips_the_months_without_one() -> None:
    found = firings("0 0 31 * *", at(2026, 1, 31), 4)
    assert found == [at(2026, 3, 31), at(2026, 5, 31), at(2026, 7, 31), at(2026, 8, 31)]
    assert firings("0 0 30 * *", at(2026, 1, 30), 2) == [at(2026, 3, 30), at(2026, 4, 30)]


def test_a_day_that_never_comes_is_refused() -> None:
    with pytest.raises(InvalidInput, match="never fires"):
        parse_cron("0 0 30 2 *").next_after(NEW_YEAR)
    with pytest.raises(InvalidInput, match="never fires"):
        parse_cron("0 0 31 4,6,9,11 *").next_after(NEW_YEAR)


def test_the_next_firing_is_strictly_after_the_moment() -> None:
    cron = parse_cron("*/15 * * * *")
    assert cron.next_after(at(2026, 1, 1, 10, 15)) == at(2026, 1, 1, 10, 30)
    just_before = at(2026, 1, 1, 10, 15) - timedelta(microseconds=1)
    assert cron.next_after(just_before) == at(2026, 1, 1, 10, 15)
    assert cron.next_after(at(2026, 1, 1, 10, 15, 0, 1)) == at(2026, 1, 1, 10, 30)
    assert parse_cron("@daily").next_after(at(2026, 1, 1)) == at(2026, 1, 2)
    # Year end rolls over into the next year.
    assert parse_cron("59 23 31 12 *").next_after(at(2026, 12, 31, 23, 59)) == at(
        2027, 12, 31, 23, 59
    )


def test_the_result_is_utc_whatever_zone_the_moment_is_in() -> None:
    five_east = timezone(timedelta(hours=5))
    moment = datetime(2026, 1, 1, 3, 0, tzinfo=five_east)  # 31 Dec 22:00 UTC
    found = parse_cron("0 0 * * *").next_after(moment)
    assert found == at(2026, 1, 1) and found.utcoffset() == timedelta(0)


# --- time zones ---------------------------------------------------------------------------


def test_a_daily_time_in_paris_is_an_hour_earlier_in_utc_from_the_spring_change() -> None:
    # Europe/Paris moves from +01:00 to +02:00 at 02:00 on 29 March 2026.
    found = firings("0 9 * * *", at(2026, 3, 27, 12), 4, "Europe/Paris")
    assert found == [at(2026, 3, 28, 8), at(2026, 3, 29, 7), at(2026, 3, 30, 7), at(2026, 3, 31, 7)]
    for moment in found:
        assert moment.tzinfo == UTC


def test_a_daily_time_in_paris_is_back_an_hour_later_after_the_autumn_change() -> None:
    # Back from +02:00 to +01:00 at 03:00 on 25 October 2026.
    found = firings("0 9 * * *", at(2026, 10, 24, 12), 2, "Europe/Paris")
    assert found == [at(2026, 10, 25, 8), at(2026, 10, 26, 8)]


def test_a_time_in_the_hour_that_is_skipped_fires_once_that_day() -> None:
    # 02:30 does not exist in Paris on 29 March; the day still fires once, just after.
    found = firings("30 2 * * *", at(2026, 3, 28, 12), 3, "Europe/Paris")
    assert found == [at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)]


def test_a_time_in_the_hour_that_repeats_fires_once_that_day() -> None:
    # 02:30 happens twice in Paris on 25 October (00:30 and 01:30 UTC): it fires once.
    found = firings("30 2 * * *", at(2026, 10, 24, 12), 3, "Europe/Paris")
    assert found == [at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30), at(2026, 10, 27, 1, 30)]


def test_every_15_minutes_in_paris_keeps_its_pace_across_both_changes() -> None:
    spring = firings("*/15 * * * *", at(2026, 3, 29, 0, 30), 5, "Europe/Paris")
    assert spring == [at(2026, 3, 29, 0, 45) + timedelta(minutes=15 * i) for i in range(5)]
    # In autumn the repeated hour runs too: no hour without firings.
    autumn = firings("*/15 * * * *", at(2026, 10, 24, 23, 50), 12, "Europe/Paris")
    assert autumn == [at(2026, 10, 25, 0, 0) + timedelta(minutes=15 * i) for i in range(12)]


def test_a_zone_with_another_offset_shifts_the_utc_instant() -> None:
    found = firings("0 0 * * *", at(2026, 1, 1), 1, "Asia/Kolkata")  # +05:30
    assert found == [at(2026, 1, 1, 18, 30)]
    found = firings("0 9 1 1 *", at(2026, 6, 1), 1, "America/New_York")  # -05:00 in winter
    assert found == [at(2027, 1, 1, 14)]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("* * * *", ["4 fields", "five"]),
        ("* * * * * *", ["6 fields", "five"]),
        ("", ["five cron fields"]),
        ("   ", ["five cron fields"]),
        ("@reboot", ["1 fields"]),
        ("60 * * * *", ["'60'", "minute", "0-59"]),
        ("* 24 * * *", ["'24'", "hour", "0-23"]),
        ("* * 0 * *", ["'0'", "day of month", "1-31"]),
        ("* * 32 * *", ["'32'", "day of month"]),
        ("* * * 13 *", ["'13'", "month", "1-12"]),
        ("* * * 0 *", ["'0'", "month"]),
        ("* * * * 8", ["'8'", "day of week", "0-7"]),
        ("5-1 * * * *", ["'5-1'", "minute"]),
        ("*/0 * * * *", ["minute step", "positive"]),
        ("0 */0 * * *", ["hour step", "positive"]),
        ("* * * foo *", ["'foo'", "month"]),
        ("* * * * funday", ["'funday'", "day of week"]),
        ("* * * * jan", ["'jan'", "day of week"]),  # a month's name is no weekday
        ("* * * mon *", ["'mon'", "month"]),
        ("a * * * *", ["'a'", "minute"]),
        ("1.5 * * * *", ["'1.5'", "minute"]),
        ("*/x * * * *", ["minute step", "'*/x'"]),
        ("*/-1 * * * *", ["minute step"]),
        ("*/ * * * *", ["minute step"]),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_cron(text)
    assert err.value.field == "schedule"
    for word in words:
        assert word in err.value.message, err.value.message


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "Europe/Pariss", "../../etc/passwd"])
def test_an_unknown_time_zone_is_named(zone: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_cron("0 9 * * *", zone)
    assert err.value.field == "timezone"
    assert "unknown time zone" in err.value.message and repr(zone) in err.value.message


def test_a_schedule_keeps_its_text_and_zone() -> None:
    cron = parse_cron("@daily", "Europe/Paris")
    assert cron.text == "@daily"
    assert str(cron.zone) == "Europe/Paris"
    assert parse_cron("0 0 * * *").zone == UTC
