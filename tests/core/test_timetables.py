"""Timetables: presets, cron strings, DST, timedeltas, @once, None, custom subclasses, errors.

Every clock here is fixed; the functions under test are pure. The run for the data interval
``[start, end)`` becomes due at ``end`` and has ``logical_date = start`` (Airflow's rule).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from timetable_support import WeekdaysAt2, utc

from mlpipe import DAG
from mlpipe.core.timetables import (
    CronTimetable,
    DataInterval,
    DeltaTimetable,
    NullTimetable,
    OnceTimetable,
    ScheduleError,
    Timetable,
    intervals_between,
    make_timetable,
)
from mlpipe.errors import DagDefinitionError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)



def iv(start: datetime, end: datetime) -> DataInterval:
    return DataInterval(start, end)


def length(interval: DataInterval) -> timedelta:
    """Real elapsed time (aware subtraction with one shared tzinfo would be wall-clock)."""
    return interval.end.astimezone(UTC) - interval.start.astimezone(UTC)


def cron(expression: str, zone: tzinfo = UTC) -> Timetable:
    return make_timetable(expression, start_date=datetime(2020, 1, 1, tzinfo=zone))




# ---------------------------------------------------------------- make_timetable ---------


@pytest.mark.parametrize(
    ("schedule", "kind"),
    [
        (None, NullTimetable),
        ("@once", OnceTimetable),
        ("@hourly", CronTimetable),
        ("@daily", CronTimetable),
        ("@weekly", CronTimetable),
        ("@monthly", CronTimetable),
        ("@yearly", CronTimetable),
        ("@annually", CronTimetable),
        ("@midnight", CronTimetable),
        ("*/5 * * * *", CronTimetable),
        (timedelta(hours=6), DeltaTimetable),
    ],
)
def test_make_timetable_picks_the_kind(schedule: object, kind: type[Timetable]) -> None:
    assert isinstance(make_timetable(schedule, start_date=utc(2024, 1, 1)), kind)


def test_a_timetable_object_is_used_as_is() -> None:
    custom = WeekdaysAt2()
    assert make_timetable(custom, start_date=utc(2024, 1, 1)) is custom
    assert make_timetable(custom, start_date=None) is custom


@pytest.mark.parametrize(
    ("start_date", "zone"),
    [
        (datetime(2024, 1, 1, tzinfo=BERLIN), BERLIN),
        (datetime(2024, 1, 1, tzinfo=NEW_YORK), NEW_YORK),
        (datetime(2024, 1, 1), UTC),
        (None, UTC),
    ],
)
def test_cron_is_evaluated_in_the_start_dates_zone(start_date: datetime | None,
                                                   zone: tzinfo) -> None:
    timetable = make_timetable("0 2 * * *", start_date=start_date)
    assert isinstance(timetable, CronTimetable)
    assert timetable.timezone == zone


@pytest.mark.parametrize(
    ("schedule", "periodic"),
    [(None, False), ("@once", False), ("@daily", True), (timedelta(hours=1), True)],
)
def test_periodic_flag(schedule: object, periodic: bool) -> None:
    assert make_timetable(schedule, start_date=utc(2024, 1, 1)).periodic is periodic


# ---------------------------------------------------------------- presets and cron -------


@pytest.mark.parametrize(
    ("schedule", "moment", "expected"),
    [
        # @hourly: at or after, so an exact fire time is its own interval's start
        ("@hourly", utc(2024, 1, 1, 10), iv(utc(2024, 1, 1, 10), utc(2024, 1, 1, 11))),
        ("@hourly", utc(2024, 1, 1, 10, 15), iv(utc(2024, 1, 1, 11), utc(2024, 1, 1, 12))),
        ("@hourly", utc(2024, 12, 31, 23, 30), iv(utc(2025, 1, 1, 0), utc(2025, 1, 1, 1))),
        # @daily / @midnight, month ends and Feb in leap and common years
        ("@daily", utc(2024, 1, 31), iv(utc(2024, 1, 31), utc(2024, 2, 1))),
        ("@daily", utc(2024, 1, 31, 0, 0, 1), iv(utc(2024, 2, 1), utc(2024, 2, 2))),
        ("@daily", utc(2024, 2, 28), iv(utc(2024, 2, 28), utc(2024, 2, 29))),
        ("@daily", utc(2024, 2, 29), iv(utc(2024, 2, 29), utc(2024, 3, 1))),
        ("@daily", utc(2023, 2, 28), iv(utc(2023, 2, 28), utc(2023, 3, 1))),
        ("@daily", utc(2024, 4, 30, 12), iv(utc(2024, 5, 1), utc(2024, 5, 2))),
        ("@daily", utc(2024, 12, 31, 0, 0, 0, 1), iv(utc(2025, 1, 1), utc(2025, 1, 2))),
        ("@midnight", utc(2024, 12, 31), iv(utc(2024, 12, 31), utc(2025, 1, 1))),
        # @weekly: Sunday midnight (2024-01-03 is a Wednesday, 2024-01-07 a Sunday)
        ("@weekly", utc(2024, 1, 3), iv(utc(2024, 1, 7), utc(2024, 1, 14))),
        ("@weekly", utc(2024, 1, 7), iv(utc(2024, 1, 7), utc(2024, 1, 14))),
        ("@weekly", utc(2024, 12, 30), iv(utc(2025, 1, 5), utc(2025, 1, 12))),
        # @monthly: from the 31st to the 1st, through February
        ("@monthly", utc(2024, 1, 31, 12), iv(utc(2024, 2, 1), utc(2024, 3, 1))),
        ("@monthly", utc(2024, 2, 1), iv(utc(2024, 2, 1), utc(2024, 3, 1))),
        ("@monthly", utc(2023, 2, 1), iv(utc(2023, 2, 1), utc(2023, 3, 1))),
        ("@monthly", utc(2024, 12, 2), iv(utc(2025, 1, 1), utc(2025, 2, 1))),
        # @yearly / @annually
        ("@yearly", utc(2024, 6, 1), iv(utc(2025, 1, 1), utc(2026, 1, 1))),
        ("@yearly", utc(2024, 1, 1), iv(utc(2024, 1, 1), utc(2025, 1, 1))),
        ("@annually", utc(2024, 12, 31, 23, 59), iv(utc(2025, 1, 1), utc(2026, 1, 1))),
        # cron strings
        ("0 0 29 2 *", utc(2023, 3, 1), iv(utc(2024, 2, 29), utc(2028, 2, 29))),
        ("0 0 29 2 *", utc(2024, 2, 29), iv(utc(2024, 2, 29), utc(2028, 2, 29))),
        ("0 0 31 * *", utc(2024, 2, 1), iv(utc(2024, 3, 31), utc(2024, 5, 31))),
        ("0 0 L * *", utc(2024, 2, 1), iv(utc(2024, 2, 29), utc(2024, 3, 31))),
        ("0 0 L * *", utc(2023, 2, 1), iv(utc(2023, 2, 28), utc(2023, 3, 31))),
        ("0 0 1 * *", utc(2024, 1, 31, 23, 59), iv(utc(2024, 2, 1), utc(2024, 3, 1))),
        ("59 23 31 12 *", utc(2024, 12, 31, 23, 59),
         iv(utc(2024, 12, 31, 23, 59), utc(2025, 12, 31, 23, 59))),
        ("*/15 * * * *", utc(2024, 12, 31, 23, 50),
         iv(utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 0, 15))),
        ("0 9 * * 1-5", utc(2024, 1, 5, 10), iv(utc(2024, 1, 8, 9), utc(2024, 1, 9, 9))),
        ("30 6 1,15 * *", utc(2024, 1, 15, 6, 31), iv(utc(2024, 2, 1, 6, 30),
                                                      utc(2024, 2, 15, 6, 30))),
    ],
)
def test_cron_interval_starting_at_or_after(schedule: str, moment: datetime,
                                            expected: DataInterval) -> None:
    assert cron(schedule).interval_starting_at_or_after(moment) == expected


@pytest.mark.parametrize(
    ("schedule", "first", "last", "starts"),
    [
        ("@daily", utc(2024, 2, 27), utc(2024, 3, 1),
         [utc(2024, 2, 27), utc(2024, 2, 28), utc(2024, 2, 29), utc(2024, 3, 1)]),
        ("@daily", utc(2023, 2, 27), utc(2023, 3, 1),
         [utc(2023, 2, 27), utc(2023, 2, 28), utc(2023, 3, 1)]),
        ("@daily", utc(2024, 12, 30), utc(2025, 1, 2),
         [utc(2024, 12, 30), utc(2024, 12, 31), utc(2025, 1, 1), utc(2025, 1, 2)]),
        ("@monthly", utc(2024, 11, 1), utc(2025, 3, 1),
         [utc(2024, 11, 1), utc(2024, 12, 1), utc(2025, 1, 1), utc(2025, 2, 1),
          utc(2025, 3, 1)]),
        ("0 0 29 2 *", utc(2023, 1, 1), utc(2032, 12, 31),
         [utc(2024, 2, 29), utc(2028, 2, 29), utc(2032, 2, 29)]),
        ("@hourly", utc(2024, 12, 31, 22), utc(2025, 1, 1, 1),
         [utc(2024, 12, 31, 22), utc(2024, 12, 31, 23), utc(2025, 1, 1, 0),
          utc(2025, 1, 1, 1)]),
    ],
)
def test_cron_intervals_across_month_and_year_ends(schedule: str, first: datetime,
                                                   last: datetime,
                                                   starts: list[datetime]) -> None:
    found = intervals_between(cron(schedule), first, last)
    assert [i.start for i in found] == starts
    # contiguous: each interval ends where the next starts
    assert all(a.end == b.start for a, b in pairwise(found))


def test_cron_with_a_fixed_offset_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    assert cron("0 2 * * *", india).interval_starting_at_or_after(utc(2024, 1, 1)) == iv(
        utc(2024, 1, 1, 20, 30), utc(2024, 1, 2, 20, 30)
    )


def test_cron_intervals_are_aware_utc() -> None:
    interval = cron("0 2 * * *", BERLIN).interval_starting_at_or_after(utc(2024, 7, 1))
    assert interval is not None
    assert interval.start.tzinfo is UTC and interval.end.tzinfo is UTC
    assert interval == iv(utc(2024, 7, 1, 0), utc(2024, 7, 2, 0))


# ---------------------------------------------------------------- DST ----------------------
# Berlin:   2024-03-31 02:00 CET -> 03:00 CEST (UTC+1 -> UTC+2)
#           2024-10-27 03:00 CEST -> 02:00 CET (02:00-03:00 local happens twice)
# New York: 2024-03-10 02:00 EST -> 03:00 EDT (UTC-5 -> UTC-4)
#           2024-11-03 02:00 EDT -> 01:00 EST (01:00-02:00 local happens twice)
# On the spring-forward day a fire at a local time that does not exist moves forward by the
# gap (02:00 -> 03:00, 02:30 -> 03:30), as in Airflow; an ambiguous fire on the fall-back day
# fires once, at its first occurrence.


@pytest.mark.parametrize(
    ("zone", "schedule", "first", "last", "starts"),
    [
        (BERLIN, "0 2 * * *", utc(2024, 3, 30), utc(2024, 4, 1, 12),
         [utc(2024, 3, 30, 1), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)]),
        (BERLIN, "30 2 * * *", utc(2024, 3, 30), utc(2024, 4, 1, 12),
         [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]),
        (BERLIN, "0 0 * * *", utc(2024, 3, 29, 12), utc(2024, 4, 1, 12),
         [utc(2024, 3, 29, 23), utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)]),
        (BERLIN, "0 2 * * *", utc(2024, 10, 26), utc(2024, 10, 28, 12),
         [utc(2024, 10, 26, 0), utc(2024, 10, 27, 0), utc(2024, 10, 28, 1)]),
        (BERLIN, "30 2 * * *", utc(2024, 10, 26), utc(2024, 10, 28, 12),
         [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]),
        (BERLIN, "0 0 * * *", utc(2024, 10, 25, 12), utc(2024, 10, 28, 12),
         [utc(2024, 10, 25, 22), utc(2024, 10, 26, 22), utc(2024, 10, 27, 23)]),
        (NEW_YORK, "0 2 * * *", utc(2024, 3, 9), utc(2024, 3, 11, 12),
         [utc(2024, 3, 9, 7), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)]),
        (NEW_YORK, "30 2 * * *", utc(2024, 3, 9), utc(2024, 3, 11, 12),
         [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 30), utc(2024, 3, 11, 6, 30)]),
        (NEW_YORK, "0 0 * * *", utc(2024, 3, 9), utc(2024, 3, 11, 12),
         [utc(2024, 3, 9, 5), utc(2024, 3, 10, 5), utc(2024, 3, 11, 4)]),
        (NEW_YORK, "0 2 * * *", utc(2024, 11, 2), utc(2024, 11, 4, 12),
         [utc(2024, 11, 2, 6), utc(2024, 11, 3, 7), utc(2024, 11, 4, 7)]),
        (NEW_YORK, "30 2 * * *", utc(2024, 11, 2), utc(2024, 11, 4, 12),
         [utc(2024, 11, 2, 6, 30), utc(2024, 11, 3, 7, 30), utc(2024, 11, 4, 7, 30)]),
        (NEW_YORK, "0 0 * * *", utc(2024, 11, 2), utc(2024, 11, 4, 12),
         [utc(2024, 11, 2, 4), utc(2024, 11, 3, 4), utc(2024, 11, 4, 5)]),
        # 01:30 is ambiguous in New York on 2024-11-03: it fires once, at 01:30 EDT
        (NEW_YORK, "30 1 * * *", utc(2024, 11, 2), utc(2024, 11, 4, 12),
         [utc(2024, 11, 2, 5, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_daily_cron_across_dst_exact_utc_instants(zone: ZoneInfo, schedule: str,
                                                  first: datetime, last: datetime,
                                                  starts: list[datetime]) -> None:
    found = intervals_between(cron(schedule, zone), first, last)
    assert [i.start for i in found] == starts
    assert all(a.end == b.start for a, b in pairwise(found))


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [(BERLIN, date(2024, 3, 31), date(2024, 10, 27)),
     (NEW_YORK, date(2024, 3, 10), date(2024, 11, 3))],
    ids=["berlin", "new_york"],
)
@pytest.mark.parametrize("schedule", ["0 2 * * *", "30 2 * * *", "0 0 * * *", "30 1 * * *"])
def test_daily_cron_runs_once_per_local_day_around_dst(zone: ZoneInfo, spring: date,
                                                       fall: date, schedule: str) -> None:
    minute, hour = (int(f) for f in schedule.split()[:2])
    for day in (spring, fall):
        first = datetime.combine(day - timedelta(days=3), time(), zone)
        last = datetime.combine(day + timedelta(days=3), time(23, 59), zone)
        found = intervals_between(cron(schedule, zone), first, last)
        local_starts = [i.start.astimezone(zone) for i in found]
        days = [s.date() for s in local_starts]
        assert days == [day - timedelta(days=3) + timedelta(days=n) for n in range(7)]
        for start in local_starts:
            skipped = start.date() == spring and hour == 2  # 02:xx does not exist that day
            assert (start.hour, start.minute) == ((3, minute) if skipped else (hour, minute))
        assert all(a.end == b.start for a, b in pairwise(found))


@pytest.mark.parametrize(
    ("zone", "first", "last"),
    [
        (BERLIN, utc(2024, 3, 30, 22), utc(2024, 3, 31, 4)),
        (NEW_YORK, utc(2024, 3, 10, 4), utc(2024, 3, 10, 10)),
    ],
    ids=["berlin", "new_york"],
)
def test_hourly_across_spring_forward_every_interval_is_one_real_hour(
    zone: ZoneInfo, first: datetime, last: datetime
) -> None:
    found = intervals_between(cron("0 * * * *", zone), first, last)
    assert [i.start for i in found] == [first + n * HOUR for n in range(7)]
    assert all(length(i) == HOUR for i in found)


@pytest.mark.parametrize(
    ("zone", "first", "last", "repeated"),
    [
        (BERLIN, utc(2024, 10, 26, 21), utc(2024, 10, 27, 4), "02:00"),
        (NEW_YORK, utc(2024, 11, 3, 2), utc(2024, 11, 3, 9), "01:00"),
    ],
    ids=["berlin", "new_york"],
)
def test_hourly_across_fall_back_fires_every_real_hour(zone: ZoneInfo, first: datetime,
                                                       last: datetime, repeated: str) -> None:
    """As Airflow: an hourly cron runs every real hour, so the repeated local hour runs
    twice; every interval is one hour long and coverage has no gaps."""
    found = intervals_between(cron("0 * * * *", zone), first, last)
    assert all(a.end == b.start for a, b in pairwise(found))
    assert found[0].start == first
    assert all(length(i) == HOUR for i in found)
    local_labels = [i.start.astimezone(zone).strftime("%H:%M") for i in found]
    assert local_labels.count(repeated) == 2


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2024, 3, 31), 23),
        (BERLIN, date(2024, 10, 27), 25),
        (NEW_YORK, date(2024, 3, 10), 23),
        (NEW_YORK, date(2024, 11, 3), 25),
        (BERLIN, date(2024, 7, 1), 24),
    ],
)
def test_midnight_interval_is_the_local_day(zone: ZoneInfo, day: date, hours: int) -> None:
    interval = cron("0 0 * * *", zone).interval_starting_at_or_after(
        datetime.combine(day, time(), zone)
    )
    assert interval is not None
    assert interval.start == datetime.combine(day, time(), zone)
    assert interval.end == datetime.combine(day + DAY, time(), zone)
    assert length(interval) == timedelta(hours=hours)


# ---------------------------------------------------------------- timedelta ----------------


@pytest.mark.parametrize(
    ("delta", "anchor", "moment", "expected"),
    [
        (timedelta(hours=6), utc(2024, 1, 1), utc(2024, 1, 1),
         iv(utc(2024, 1, 1, 0), utc(2024, 1, 1, 6))),
        (timedelta(hours=6), utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 0, 1),
         iv(utc(2024, 1, 1, 6), utc(2024, 1, 1, 12))),
        (timedelta(hours=6), utc(2024, 1, 1), utc(2023, 12, 25),
         iv(utc(2024, 1, 1, 0), utc(2024, 1, 1, 6))),
        (timedelta(hours=6), utc(2024, 1, 1), utc(2024, 1, 1, 18),
         iv(utc(2024, 1, 1, 18), utc(2024, 1, 2, 0))),
        (DAY, utc(2024, 1, 1, 10, 30), utc(2024, 1, 5, 10, 29),
         iv(utc(2024, 1, 5, 10, 30), utc(2024, 1, 6, 10, 30))),
        (timedelta(minutes=90), utc(2024, 1, 1), utc(2024, 1, 1, 4),
         iv(utc(2024, 1, 1, 4, 30), utc(2024, 1, 1, 6))),
        (DAY, utc(2024, 2, 28, 12), utc(2024, 2, 29, 13),
         iv(utc(2024, 3, 1, 12), utc(2024, 3, 2, 12))),
    ],
)
def test_timedelta_anchored_at_start_date(delta: timedelta, anchor: datetime,
                                          moment: datetime, expected: DataInterval) -> None:
    timetable = make_timetable(delta, start_date=anchor)
    assert timetable.interval_starting_at_or_after(moment) == expected


def test_timedelta_intervals_between() -> None:
    timetable = make_timetable(timedelta(hours=8), start_date=utc(2024, 1, 1, 1))
    found = intervals_between(timetable, utc(2024, 1, 1), utc(2024, 1, 2, 1))
    assert found == [
        iv(utc(2024, 1, 1, 1), utc(2024, 1, 1, 9)),
        iv(utc(2024, 1, 1, 9), utc(2024, 1, 1, 17)),
        iv(utc(2024, 1, 1, 17), utc(2024, 1, 2, 1)),
        iv(utc(2024, 1, 2, 1), utc(2024, 1, 2, 9)),
    ]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("delta", "anchor", "moment"),
    [
        # anchor 2024-03-30 00:00 CET = 03-29 23:00Z; the moments are after spring-forward
        (HOUR, datetime(2024, 3, 30, tzinfo=BERLIN), utc(2024, 3, 31, 12)),
        (DAY, datetime(2024, 3, 30, tzinfo=BERLIN), utc(2024, 3, 31, 22, 30)),
        # anchor 2024-10-26 00:00 CEST = 10-25 22:00Z; the moments are after fall-back
        (HOUR, datetime(2024, 10, 26, tzinfo=BERLIN), utc(2024, 10, 27, 12)),
        (DAY, datetime(2024, 10, 26, tzinfo=BERLIN), utc(2024, 10, 28, 0, 30)),
    ],
    ids=["spring-1h", "spring-1d", "fall-1h", "fall-1d"],
)
def test_timedelta_in_a_dst_zone_is_a_fixed_real_duration(delta: timedelta, anchor: datetime,
                                                          moment: datetime) -> None:
    """As in Airflow, a timedelta schedule is fixed real time: intervals start at
    start_date + k * delta (real elapsed time), the first one at or after the moment."""
    interval = make_timetable(delta, start_date=anchor).interval_starting_at_or_after(moment)
    assert interval is not None
    assert interval.start >= moment
    assert interval.start - moment < delta
    assert length(interval) == delta
    assert (interval.start.astimezone(UTC) - anchor.astimezone(UTC)) % delta == timedelta(0)


def test_timedelta_intervals_are_aware_utc() -> None:
    """DataInterval promises aware UTC; cron intervals are, timedelta ones keep the anchor's
    zone."""
    anchor = datetime(2024, 7, 1, tzinfo=BERLIN)
    interval = make_timetable(HOUR, start_date=anchor).interval_starting_at_or_after(anchor)
    assert interval == iv(utc(2024, 6, 30, 22), utc(2024, 6, 30, 23))
    assert interval is not None
    assert interval.start.tzinfo is UTC and interval.end.tzinfo is UTC


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [(timedelta(hours=6), iv(utc(2024, 1, 1, 6), utc(2024, 1, 1, 12))),
     ("@daily", iv(utc(2024, 1, 2), utc(2024, 1, 3)))],
    ids=["timedelta", "cron"],
)
def test_naive_datetimes_are_utc_in_the_pure_functions(schedule: object,
                                                       expected: DataInterval) -> None:
    timetable = make_timetable(schedule, start_date=datetime(2024, 1, 1))
    interval = timetable.interval_starting_at_or_after(datetime(2024, 1, 1, 1))
    assert interval is not None
    assert interval.start.tzinfo is not None
    assert interval == expected


def test_timedelta_without_start_date_is_anchored_at_the_epoch() -> None:
    timetable = make_timetable(timedelta(hours=5), start_date=None)
    assert timetable.interval_starting_at_or_after(utc(1970, 1, 1, 7)) == iv(
        utc(1970, 1, 1, 10), utc(1970, 1, 1, 15)
    )


# ---------------------------------------------------------------- @once, None --------------


def test_once_is_one_instant_interval_at_start_date() -> None:
    timetable = make_timetable("@once", start_date=utc(2024, 1, 1, 10))
    found = intervals_between(timetable, utc(2024, 1, 1, 10), utc(2030, 1, 1))
    assert found == [iv(utc(2024, 1, 1, 10), utc(2024, 1, 1, 10))]


def test_none_has_no_intervals() -> None:
    timetable = make_timetable(None, start_date=utc(2024, 1, 1))
    assert timetable.interval_starting_at_or_after(utc(2024, 1, 1)) is None
    assert intervals_between(timetable, utc(2024, 1, 1), utc(2030, 1, 1)) == []


# ---------------------------------------------------------------- intervals_between --------


@pytest.mark.parametrize(
    ("schedule", "first", "last", "end_date", "starts"),
    [
        # both ends inclusive
        ("@daily", utc(2024, 1, 1), utc(2024, 1, 3), None,
         [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]),
        # first is rounded up to the next fire; last exclusive only if not a fire
        ("@daily", utc(2024, 1, 1, 0, 0, 1), utc(2024, 1, 3, 23), None,
         [utc(2024, 1, 2), utc(2024, 1, 3)]),
        ("@daily", utc(2024, 1, 1), utc(2024, 1, 1), None, [utc(2024, 1, 1)]),
        ("@daily", utc(2024, 1, 1, 1), utc(2024, 1, 1, 23), None, []),
        # end_date bounds the start (logical date) inclusively
        ("@daily", utc(2024, 1, 1), utc(2024, 1, 10), utc(2024, 1, 3),
         [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]),
        ("@daily", utc(2024, 1, 1), utc(2024, 1, 10), utc(2024, 1, 2, 23, 59),
         [utc(2024, 1, 1), utc(2024, 1, 2)]),
        ("@daily", utc(2024, 1, 5), utc(2024, 1, 10), utc(2024, 1, 3), []),
        ("@hourly", utc(2024, 1, 1, 22), utc(2024, 1, 2, 2), utc(2024, 1, 2, 0, 30),
         [utc(2024, 1, 1, 22), utc(2024, 1, 1, 23), utc(2024, 1, 2, 0)]),
        (timedelta(hours=12), utc(2024, 1, 1), utc(2024, 1, 3), utc(2024, 1, 2),
         [utc(2024, 1, 1), utc(2024, 1, 1, 12), utc(2024, 1, 2)]),
    ],
)
def test_intervals_between(schedule: object, first: datetime, last: datetime,
                           end_date: datetime | None, starts: list[datetime]) -> None:
    timetable = make_timetable(schedule, start_date=utc(2024, 1, 1))
    found = intervals_between(timetable, first, last, end_date=end_date)
    assert [i.start for i in found] == starts


# ---------------------------------------------------------------- manual runs --------------


@pytest.mark.parametrize(
    ("schedule", "zone", "logical_date", "expected"),
    [
        ("@daily", UTC, utc(2024, 1, 10, 15), iv(utc(2024, 1, 9), utc(2024, 1, 10))),
        ("@daily", UTC, utc(2024, 1, 10), iv(utc(2024, 1, 9), utc(2024, 1, 10))),
        ("@daily", UTC, utc(2024, 3, 1, 5), iv(utc(2024, 2, 29), utc(2024, 3, 1))),
        ("@hourly", UTC, utc(2024, 1, 1, 0, 30), iv(utc(2023, 12, 31, 23), utc(2024, 1, 1))),
        ("@monthly", UTC, utc(2024, 3, 15), iv(utc(2024, 2, 1), utc(2024, 3, 1))),
        ("0 2 * * *", BERLIN, utc(2024, 4, 1, 12), iv(utc(2024, 3, 31, 1), utc(2024, 4, 1))),
        ("0 2 * * *", NEW_YORK, utc(2024, 11, 3, 12),
         iv(utc(2024, 11, 2, 6), utc(2024, 11, 3, 7))),
        (timedelta(hours=6), UTC, utc(2024, 1, 10, 15),
         iv(utc(2024, 1, 10, 9), utc(2024, 1, 10, 15))),
        (DAY, UTC, utc(2024, 3, 1), iv(utc(2024, 2, 29), utc(2024, 3, 1))),
        (None, UTC, utc(2024, 1, 10, 15), iv(utc(2024, 1, 10, 15), utc(2024, 1, 10, 15))),
        ("@once", UTC, utc(2024, 1, 10, 15), iv(utc(2024, 1, 10, 15), utc(2024, 1, 10, 15))),
    ],
)
def test_infer_manual_interval(schedule: object, zone: tzinfo, logical_date: datetime,
                               expected: DataInterval) -> None:
    timetable = make_timetable(schedule, start_date=datetime(2020, 1, 1, tzinfo=zone))
    assert timetable.infer_manual_interval(logical_date) == expected


# ---------------------------------------------------------------- custom timetable ---------


def test_custom_timetable_with_intervals_between() -> None:
    # 2024-01-04 is a Thursday
    found = intervals_between(WeekdaysAt2(), utc(2024, 1, 4), utc(2024, 1, 9, 2))
    assert found == [
        iv(utc(2024, 1, 4, 2), utc(2024, 1, 5, 2)),
        iv(utc(2024, 1, 5, 2), utc(2024, 1, 8, 2)),
        iv(utc(2024, 1, 8, 2), utc(2024, 1, 9, 2)),
        iv(utc(2024, 1, 9, 2), utc(2024, 1, 10, 2)),
    ]


def test_custom_timetable_in_a_dag() -> None:
    custom = WeekdaysAt2()
    built = DAG("weekdays", schedule=custom, start_date=utc(2024, 1, 1))
    assert built.timetable is custom
    assert repr(custom) == "WeekdaysAt2('weekdays at 02:00 UTC')"


def test_timetable_base_needs_interval_starting_at_or_after() -> None:
    with pytest.raises(TypeError, match="abstract method interval_starting_at_or_after"):
        Timetable()  # type: ignore[abstract]


# ---------------------------------------------------------------- DAG wiring ---------------


@pytest.mark.parametrize("keyword", ["schedule", "schedule_interval"])
@pytest.mark.parametrize(
    ("value", "kind"),
    [("@daily", CronTimetable), (timedelta(hours=1), DeltaTimetable),
     ("@once", OnceTimetable), ("0 2 * * *", CronTimetable)],
)
def test_dag_builds_its_timetable(keyword: str, value: object, kind: type) -> None:
    built = DAG("tt", start_date=utc(2024, 1, 1), **{keyword: value})
    assert built.schedule == value
    assert isinstance(built.timetable, kind)


def test_dag_without_schedule_has_a_null_timetable() -> None:
    assert isinstance(DAG("manual_only").timetable, NullTimetable)


def test_dag_naive_start_date_is_utc() -> None:
    built = DAG("naive", schedule="@daily", start_date=datetime(2024, 1, 1),
                end_date=datetime(2024, 2, 1))
    assert built.start_date == utc(2024, 1, 1)
    assert built.end_date == utc(2024, 2, 1)
    assert isinstance(built.timetable, CronTimetable)
    assert built.timetable.timezone is UTC


def test_dag_zone_comes_from_start_date() -> None:
    built = DAG("berlin", schedule="0 2 * * *", start_date=datetime(2024, 1, 1, tzinfo=BERLIN))
    assert isinstance(built.timetable, CronTimetable)
    assert built.timetable.timezone == BERLIN
    assert built.timetable.interval_starting_at_or_after(utc(2024, 3, 31)) == iv(
        utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)
    )


def test_dag_timedelta_is_anchored_at_start_date() -> None:
    built = DAG("every_6h", schedule=timedelta(hours=6), start_date=utc(2024, 1, 1, 3))
    assert built.timetable.interval_starting_at_or_after(utc(2024, 1, 1, 4)) == iv(
        utc(2024, 1, 1, 9), utc(2024, 1, 1, 15)
    )


# ---------------------------------------------------------------- definition errors --------


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        ("61 * * * *", r"invalid cron expression '61 \* \* \* \*'"),
        ("every day", r"invalid cron expression 'every day'"),
        ("* * * *", r"invalid cron expression"),
        ("0 25 * * *", r"invalid cron expression"),
        ("", r"invalid cron expression"),
        ("@fortnightly", r"unknown schedule preset '@fortnightly'.*'@daily'.*'@hourly'"),
        ("@fortnightly", r"'@monthly'.*'@once'.*'@weekly'.*'@yearly'"),
        (5, r"schedule 5 of type int is not supported"),
        (3.5, r"of type float is not supported"),
        (timedelta(0), r"must be positive"),
        (timedelta(hours=-1), r"must be positive"),
    ],
)
def test_make_timetable_errors(schedule: object, match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        make_timetable(schedule, start_date=utc(2024, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"schedule": "61 * * * *"}, ScheduleError, r"DAG 'bad': invalid cron expression"),
        ({"schedule": "every day"}, ScheduleError, r"DAG 'bad': invalid cron"),
        ({"schedule_interval": "every day"}, ScheduleError, r"DAG 'bad': invalid cron"),
        ({"schedule": "@fortnightly"}, ScheduleError,
         r"DAG 'bad': unknown schedule preset '@fortnightly'; valid: .*'@daily'"),
        ({"schedule": 5}, ScheduleError, r"DAG 'bad': schedule 5 of type int"),
        ({"schedule": timedelta(0)}, ScheduleError, r"DAG 'bad': .*must be positive"),
        ({"schedule": timedelta(seconds=-5)}, ScheduleError, r"must be positive"),
        ({"schedule": "@daily", "end_date": utc(2023, 12, 31)}, DagDefinitionError,
         r"DAG 'bad': end_date 2023-12-31T00:00:00\+00:00 is before start_date "
         r"2024-01-01T00:00:00\+00:00"),
        ({"schedule": "@daily", "schedule_interval": "@daily"}, DagDefinitionError,
         r"DAG 'bad': pass schedule or schedule_interval, not both"),
        ({"schedule": "@daily", "schedule_interval": timedelta(hours=1)},
         DagDefinitionError, r"not both"),
    ],
)
def test_dag_definition_errors(kwargs: dict[str, object], error: type[Exception],
                               match: str) -> None:
    with pytest.raises(error, match=match):
        DAG("bad", start_date=utc(2024, 1, 1), **kwargs)  # type: ignore[arg-type]


def test_schedule_error_is_a_definition_error() -> None:
    assert issubclass(ScheduleError, DagDefinitionError)


def test_end_date_equal_to_start_date_is_fine() -> None:
    built = DAG("same", schedule="@daily", start_date=utc(2024, 1, 1),
                end_date=utc(2024, 1, 1))
    assert built.end_date == built.start_date


def test_end_date_before_start_date_across_zones() -> None:
    # 2024-01-01 00:30 Berlin is 2023-12-31 23:30 UTC, before a UTC start at midnight
    with pytest.raises(DagDefinitionError, match="is before start_date"):
        DAG("zones", schedule="@daily", start_date=utc(2024, 1, 1),
            end_date=datetime(2024, 1, 1, 0, 30, tzinfo=BERLIN))
