"""Which runs are due: ``due_intervals`` (catchup on/off, ``after``, end_date) and
``next_due_at``, with fixed clocks.

An interval ``[start, end)`` is complete, and its run due, once ``end`` has passed
(``end <= now``); the run's logical date is ``start``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from timetable_support import WeekdaysAt2, utc

from mlpipe import DAG
from mlpipe.core.timetables import (
    DataInterval,
    due_intervals,
    make_timetable,
    next_due_at,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)



def days(*numbers: int, month: int = 1) -> list[datetime]:
    return [utc(2024, month, n) for n in numbers]




def due(schedule: object, *, start_date: datetime | None, now: datetime, catchup: bool,
        after: datetime | None = None, end_date: datetime | None = None) -> list[datetime]:
    timetable = make_timetable(schedule, start_date=start_date)
    found = due_intervals(timetable, start_date=start_date, end_date=end_date,
                          catchup=catchup, now=now, after=after)
    assert all(i.end <= now for i in found), "an incomplete interval was returned"
    assert [i.start for i in found] == sorted(i.start for i in found), "not oldest first"
    return [i.start for i in found]


# ---------------------------------------------------------------- @daily, catchup ----------

JAN1 = utc(2024, 1, 1)


@pytest.mark.parametrize(
    ("now", "after", "catchup", "expected"),
    [
        # before start_date, or inside the first interval: nothing is due
        (utc(2023, 12, 31), None, True, []),
        (utc(2023, 12, 31), None, False, []),
        (utc(2024, 1, 1, 12), None, True, []),
        (utc(2024, 1, 1, 12), None, False, []),
        (utc(2024, 1, 2) - TICK, None, True, []),
        # the first interval is due the moment it ends
        (utc(2024, 1, 2), None, True, days(1)),
        (utc(2024, 1, 2), None, False, days(1)),
        # catchup=True: every complete interval, oldest first; the current one never
        (utc(2024, 1, 4, 6), None, True, days(1, 2, 3)),
        (utc(2024, 1, 4, 6), None, False, days(3)),
        (utc(2024, 1, 4), None, True, days(1, 2, 3)),
        # after: the newest interval that already has a run
        (utc(2024, 1, 4, 6), utc(2024, 1, 1), True, days(2, 3)),
        (utc(2024, 1, 4, 6), utc(2024, 1, 2), True, days(3)),
        (utc(2024, 1, 4, 6), utc(2024, 1, 3), True, []),
        (utc(2024, 1, 4, 6), utc(2024, 1, 3), False, []),
        (utc(2024, 1, 4, 6), utc(2024, 1, 1), False, days(3)),
        # a long outage: catchup=True fills every day, catchup=False only the latest
        (utc(2024, 2, 1, 0, 30), utc(2024, 1, 10), True, days(*range(11, 32))),
        (utc(2024, 2, 1, 0, 30), utc(2024, 1, 10), False, days(31)),
    ],
)
def test_daily_due_intervals(now: datetime, after: datetime | None, catchup: bool,
                             expected: list[datetime]) -> None:
    assert due("@daily", start_date=JAN1, now=now, catchup=catchup, after=after) == expected


@pytest.mark.parametrize(
    ("start_date", "now", "catchup", "expected"),
    [
        # a start_date between fires: the first interval starts at the next fire
        (utc(2024, 1, 1, 10), utc(2024, 1, 2, 6), True, []),
        (utc(2024, 1, 1, 10), utc(2024, 1, 2, 6), False, []),
        (utc(2024, 1, 1, 10), utc(2024, 1, 3), True, days(2)),
        (utc(2024, 1, 1, 10), utc(2024, 1, 4, 6), True, days(2, 3)),
        (utc(2024, 1, 1, 10), utc(2024, 1, 4, 6), False, days(3)),
        # start_date in the future
        (utc(2024, 6, 1), utc(2024, 1, 4, 6), True, []),
        (utc(2024, 6, 1), utc(2024, 1, 4, 6), False, []),
    ],
)
def test_nothing_before_start_date(start_date: datetime, now: datetime, catchup: bool,
                                   expected: list[datetime]) -> None:
    assert due("@daily", start_date=start_date, now=now, catchup=catchup) == expected


@pytest.mark.parametrize(
    ("end_date", "now", "catchup", "expected"),
    [
        # end_date bounds the logical date (the interval's start), inclusively
        (utc(2024, 1, 3), utc(2024, 1, 10), True, days(1, 2, 3)),
        (utc(2024, 1, 3, 12), utc(2024, 1, 10), True, days(1, 2, 3)),
        (utc(2024, 1, 3) - TICK, utc(2024, 1, 10), True, days(1, 2)),
        (utc(2024, 1, 1), utc(2024, 1, 10), True, days(1)),
        # the interval starting on end_date still waits for its end
        (utc(2024, 1, 3), utc(2024, 1, 3, 12), True, days(1, 2)),
        # catchup=False: the latest complete interval, unless it lies past end_date
        (utc(2024, 1, 3), utc(2024, 1, 10), False, []),
        (utc(2024, 1, 3), utc(2024, 1, 4), False, days(3)),
        (utc(2024, 1, 3), utc(2024, 1, 3, 12), False, days(2)),
    ],
)
def test_nothing_after_end_date(end_date: datetime, now: datetime, catchup: bool,
                                expected: list[datetime]) -> None:
    assert due("@daily", start_date=JAN1, end_date=end_date, now=now,
               catchup=catchup) == expected


# ---------------------------------------------------------------- other schedules ----------


@pytest.mark.parametrize(
    ("schedule", "start_date", "now", "catchup", "expected"),
    [
        ("@hourly", utc(2024, 1, 1, 22), utc(2024, 1, 2, 1, 30), True,
         [utc(2024, 1, 1, 22), utc(2024, 1, 1, 23), utc(2024, 1, 2, 0)]),
        ("@hourly", utc(2024, 1, 1, 22), utc(2024, 1, 2, 1, 30), False, [utc(2024, 1, 2, 0)]),
        ("@weekly", JAN1, utc(2024, 1, 22), True, [utc(2024, 1, 7), utc(2024, 1, 14)]),
        ("@weekly", JAN1, utc(2024, 1, 22), False, [utc(2024, 1, 14)]),
        ("@monthly", utc(2023, 11, 15), utc(2024, 3, 15), True,
         [utc(2023, 12, 1), utc(2024, 1, 1), utc(2024, 2, 1)]),
        ("@monthly", utc(2023, 11, 15), utc(2024, 3, 15), False, [utc(2024, 2, 1)]),
        ("@monthly", utc(2024, 1, 31), utc(2024, 3, 1), True, [utc(2024, 2, 1)]),
        ("@yearly", utc(2020, 6, 1), utc(2024, 1, 1), True,
         [utc(2021, 1, 1), utc(2022, 1, 1), utc(2023, 1, 1)]),
        ("@yearly", utc(2020, 6, 1), utc(2024, 1, 1), False, [utc(2023, 1, 1)]),
        ("0 0 29 2 *", utc(2020, 3, 1), utc(2032, 3, 1), True,
         [utc(2024, 2, 29), utc(2028, 2, 29)]),
        ("0 0 29 2 *", utc(2020, 3, 1), utc(2032, 3, 1), False, [utc(2028, 2, 29)]),
        ("*/20 * * * *", utc(2024, 12, 31, 23, 30), utc(2025, 1, 1, 0, 25), True,
         [utc(2024, 12, 31, 23, 40), utc(2025, 1, 1, 0, 0)]),
        # timedelta schedules are anchored at start_date
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2024, 1, 2, 2), True,
         [utc(2024, 1, 1, 3), utc(2024, 1, 1, 9), utc(2024, 1, 1, 15)]),
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2024, 1, 2, 2), False,
         [utc(2024, 1, 1, 15)]),
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2024, 1, 1, 9), True,
         [utc(2024, 1, 1, 3)]),
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2024, 1, 1, 9) - TICK, True, []),
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2024, 1, 1, 9) - TICK, False, []),
        (timedelta(hours=6), utc(2024, 1, 1, 3), utc(2023, 1, 1), False, []),
        (timedelta(days=1), utc(2024, 2, 28, 12), utc(2024, 3, 2), True,
         [utc(2024, 2, 28, 12), utc(2024, 2, 29, 12)]),
    ],
)
def test_due_intervals_by_schedule(schedule: object, start_date: datetime, now: datetime,
                                   catchup: bool, expected: list[datetime]) -> None:
    assert due(schedule, start_date=start_date, now=now, catchup=catchup) == expected


@pytest.mark.parametrize(
    ("now", "after", "end_date", "catchup", "expected"),
    [
        (utc(2024, 1, 1, 9), None, None, True, []),
        (utc(2024, 1, 1, 10), None, None, True, [utc(2024, 1, 1, 10)]),
        (utc(2024, 1, 1, 10), None, None, False, [utc(2024, 1, 1, 10)]),
        (utc(2030, 1, 1), None, None, True, [utc(2024, 1, 1, 10)]),
        (utc(2030, 1, 1), None, utc(2024, 6, 1), False, [utc(2024, 1, 1, 10)]),
        # once it has its run, never again
        (utc(2030, 1, 1), utc(2024, 1, 1, 10), None, True, []),
        (utc(2030, 1, 1), utc(2024, 1, 1, 10), None, False, []),
    ],
)
def test_once_is_due_once_then_never(now: datetime, after: datetime | None,
                                     end_date: datetime | None, catchup: bool,
                                     expected: list[datetime]) -> None:
    start = utc(2024, 1, 1, 10)
    timetable = make_timetable("@once", start_date=start)
    found = due_intervals(timetable, start_date=start, end_date=end_date, catchup=catchup,
                          now=now, after=after)
    assert found == [DataInterval(s, s) for s in expected]


@pytest.mark.parametrize("catchup", [True, False])
@pytest.mark.parametrize("after", [None, utc(2024, 1, 5)])
def test_none_is_never_due(catchup: bool, after: datetime | None) -> None:
    assert due(None, start_date=JAN1, now=utc(2030, 1, 1), catchup=catchup, after=after) == []


@pytest.mark.parametrize("schedule", ["@daily", timedelta(hours=1), "@once", None])
@pytest.mark.parametrize("catchup", [True, False])
def test_no_start_date_nothing_is_due(schedule: object, catchup: bool) -> None:
    assert due(schedule, start_date=None, now=utc(2030, 1, 1), catchup=catchup) == []


# ---------------------------------------------------------------- DST ----------------------


@pytest.mark.parametrize(
    ("zone", "schedule", "start_date", "now", "expected"),
    [
        (BERLIN, "0 2 * * *", datetime(2024, 3, 29, 2, tzinfo=BERLIN), utc(2024, 4, 2, 12),
         [utc(2024, 3, 29, 1), utc(2024, 3, 30, 1), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)]),
        (BERLIN, "0 2 * * *", datetime(2024, 10, 25, 2, tzinfo=BERLIN),
         utc(2024, 10, 29, 12),
         [utc(2024, 10, 25, 0), utc(2024, 10, 26, 0), utc(2024, 10, 27, 0),
          utc(2024, 10, 28, 1)]),
        (NEW_YORK, "0 2 * * *", datetime(2024, 3, 8, 2, tzinfo=NEW_YORK),
         utc(2024, 3, 12, 12),
         [utc(2024, 3, 8, 7), utc(2024, 3, 9, 7), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)]),
        (NEW_YORK, "0 2 * * *", datetime(2024, 11, 1, 2, tzinfo=NEW_YORK),
         utc(2024, 11, 5, 12),
         [utc(2024, 11, 1, 6), utc(2024, 11, 2, 6), utc(2024, 11, 3, 7), utc(2024, 11, 4, 7)]),
    ],
    ids=["berlin-spring", "berlin-fall", "ny-spring", "ny-fall"],
)
def test_catchup_across_dst_one_run_per_local_day(zone: ZoneInfo, schedule: str,
                                                  start_date: datetime, now: datetime,
                                                  expected: list[datetime]) -> None:
    found = due(schedule, start_date=start_date, now=now, catchup=True)
    assert found == expected
    local_days = [s.astimezone(zone).date() for s in found]
    assert local_days == [start_date.date() + n * DAY for n in range(4)]


@pytest.mark.parametrize(
    ("zone", "day", "runs"),
    [
        (BERLIN, date(2024, 3, 31), 23),
        (NEW_YORK, date(2024, 3, 10), 23),
        # as in Airflow, an hourly cron fires every real hour: 25 runs on the fall-back day
        (BERLIN, date(2024, 10, 27), 25),
        (NEW_YORK, date(2024, 11, 3), 25),
    ],
)
def test_hourly_catchup_over_a_dst_day(zone: ZoneInfo, day: date, runs: int) -> None:
    start = datetime.combine(day, time(), zone)
    end_of_day = datetime.combine(day + DAY, time(), zone)
    timetable = make_timetable("0 * * * *", start_date=start)
    found = due_intervals(timetable, start_date=start, end_date=end_of_day - TICK,
                          catchup=True, now=end_of_day, after=None)
    assert len(found) == runs
    assert found[0].start == start and found[-1].end == end_of_day
    assert all(a.end == b.start for a, b in pairwise(found))


# ---------------------------------------------------------------- next_due_at --------------


@pytest.mark.parametrize(
    ("schedule", "start_date", "end_date", "after", "expected"),
    [
        ("@daily", JAN1, None, None, utc(2024, 1, 2)),
        ("@daily", JAN1, None, utc(2024, 1, 1), utc(2024, 1, 3)),
        ("@daily", JAN1, None, utc(2024, 1, 31), utc(2024, 2, 2)),
        ("@daily", utc(2024, 1, 1, 10), None, None, utc(2024, 1, 3)),
        ("@daily", JAN1, utc(2024, 1, 2), utc(2024, 1, 1), utc(2024, 1, 3)),
        ("@daily", JAN1, utc(2024, 1, 2), utc(2024, 1, 2), None),
        ("@hourly", utc(2024, 12, 31, 23), None, utc(2024, 12, 31, 23), utc(2025, 1, 1, 1)),
        ("@monthly", JAN1, None, utc(2024, 1, 1), utc(2024, 3, 1)),
        ("@yearly", utc(2024, 3, 1), None, None, utc(2026, 1, 1)),
        ("0 0 29 2 *", JAN1, None, None, utc(2028, 2, 29)),
        (timedelta(hours=6), utc(2024, 1, 1, 3), None, None, utc(2024, 1, 1, 9)),
        (timedelta(hours=6), utc(2024, 1, 1, 3), None, utc(2024, 1, 1, 3), utc(2024, 1, 1, 15)),
        ("@once", utc(2024, 1, 1, 10), None, None, utc(2024, 1, 1, 10)),
        ("@once", utc(2024, 1, 1, 10), None, utc(2024, 1, 1, 10), None),
        (None, JAN1, None, None, None),
        ("@daily", None, None, None, None),
        # Berlin: the interval of 2024-03-31 starts at 03:00 CEST and ends 04-01 02:00 CEST
        ("0 2 * * *", datetime(2024, 3, 1, tzinfo=BERLIN), None, utc(2024, 3, 30, 1),
         utc(2024, 4, 1, 0)),
        ("0 2 * * *", datetime(2024, 10, 1, tzinfo=BERLIN), None, utc(2024, 10, 26, 0),
         utc(2024, 10, 28, 1)),
    ],
)
def test_next_due_at(schedule: object, start_date: datetime | None,
                     end_date: datetime | None, after: datetime | None,
                     expected: datetime | None) -> None:
    timetable = make_timetable(schedule, start_date=start_date)
    assert next_due_at(timetable, start_date=start_date, end_date=end_date,
                       after=after) == expected


@pytest.mark.parametrize(
    ("schedule", "start_date"),
    [
        ("@daily", JAN1),
        ("@hourly", utc(2024, 1, 1, 0, 30)),
        ("@monthly", utc(2024, 1, 15)),
        ("0 2 * * *", datetime(2024, 3, 30, 12, tzinfo=BERLIN)),
        ("0 2 * * *", datetime(2024, 11, 2, 12, tzinfo=NEW_YORK)),
        (timedelta(minutes=45), utc(2024, 1, 1, 0, 10)),
        ("@once", utc(2024, 1, 1, 10)),
        (WeekdaysAt2(), utc(2024, 1, 5, 3)),
    ],
)
def test_next_due_at_is_when_due_intervals_first_returns_it(schedule: object,
                                                            start_date: datetime) -> None:
    timetable = make_timetable(schedule, start_date=start_date)
    after: datetime | None = None
    for _ in range(3):
        when = next_due_at(timetable, start_date=start_date, end_date=None, after=after)
        if when is None:
            assert not timetable.periodic
            return
        kwargs = {"start_date": start_date, "end_date": None, "after": after}
        assert due_intervals(timetable, catchup=True, now=when - TICK, **kwargs) == []
        newly_due = due_intervals(timetable, catchup=True, now=when, **kwargs)
        assert len(newly_due) == 1 and newly_due[0].end == when
        after = newly_due[0].start


# ---------------------------------------------------------------- custom timetable ---------

# 2024-01-05 is a Friday; its interval runs until Monday 2024-01-08 02:00
WEEKDAY_INTERVALS = [
    DataInterval(utc(2024, 1, 4, 2), utc(2024, 1, 5, 2)),
    DataInterval(utc(2024, 1, 5, 2), utc(2024, 1, 8, 2)),
    DataInterval(utc(2024, 1, 8, 2), utc(2024, 1, 9, 2)),
]


@pytest.mark.parametrize(
    ("now", "after", "catchup", "expected"),
    [
        (utc(2024, 1, 9, 12), None, True, WEEKDAY_INTERVALS),
        (utc(2024, 1, 9, 12), WEEKDAY_INTERVALS[0].start, True, WEEKDAY_INTERVALS[1:]),
        (utc(2024, 1, 7, 12), None, True, WEEKDAY_INTERVALS[:1]),
        (utc(2024, 1, 4, 12), None, True, []),
        (utc(2024, 1, 9, 12), None, False, WEEKDAY_INTERVALS[2:]),
        (utc(2024, 1, 7, 12), None, False, WEEKDAY_INTERVALS[:1]),
        (utc(2024, 1, 4, 12), None, False, []),
        (utc(2024, 1, 9, 12), WEEKDAY_INTERVALS[2].start, False, []),
    ],
)
def test_custom_timetable_due_intervals(now: datetime, after: datetime | None,
                                        catchup: bool,
                                        expected: list[DataInterval]) -> None:
    start = utc(2024, 1, 4, 2)
    found = due_intervals(WeekdaysAt2(), start_date=start, end_date=None, catchup=catchup,
                          now=now, after=after)
    assert found == expected


def test_custom_timetable_next_due_at() -> None:
    start = utc(2024, 1, 4, 2)
    timetable = WeekdaysAt2()
    assert next_due_at(timetable, start_date=start, end_date=None,
                       after=None) == utc(2024, 1, 5, 2)
    assert next_due_at(timetable, start_date=start, end_date=None,
                       after=utc(2024, 1, 5, 2)) == utc(2024, 1, 9, 2)


# ---------------------------------------------------------------- through a DAG ------------


@pytest.mark.parametrize(
    ("kwargs", "now", "expected"),
    [
        ({"schedule": "@daily", "catchup": True}, utc(2024, 1, 4, 6), days(1, 2, 3)),
        ({"schedule": "@daily", "catchup": False}, utc(2024, 1, 4, 6), days(3)),
        ({"schedule_interval": "@daily", "catchup": True}, utc(2024, 1, 4, 6),
         days(1, 2, 3)),
        ({"schedule": "@daily", "catchup": True, "end_date": datetime(2024, 1, 2)},
         utc(2024, 1, 4, 6), days(1, 2)),
        ({"schedule": timedelta(hours=12), "catchup": True}, utc(2024, 1, 2, 1),
         [utc(2024, 1, 1), utc(2024, 1, 1, 12)]),
        ({"schedule": "@once"}, utc(2024, 1, 4, 6), days(1)),
        ({"schedule": None, "catchup": True}, utc(2024, 1, 4, 6), []),
    ],
)
def test_due_intervals_of_a_dag_with_naive_dates(kwargs: dict[str, object], now: datetime,
                                                 expected: list[datetime]) -> None:
    built = DAG("catchup", start_date=datetime(2024, 1, 1), **kwargs)  # type: ignore[arg-type]
    found = due_intervals(built.timetable, start_date=built.start_date,
                          end_date=built.end_date, catchup=built.catchup, now=now, after=None)
    assert [i.start for i in found] == expected
