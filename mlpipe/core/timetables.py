"""Timetables: which data intervals a DAG has, in its time zone, DST-correct.

As in Airflow, the run for the interval ``[start, end)`` becomes due once ``end`` has passed
and has ``logical_date = start``. Everything here is pure: the clock is a parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from mlpipe.core.datasets import DatasetCondition, dataset_condition, describe
from mlpipe.errors import ScheduleError

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@midnight": "0 0 * * *",
}


@dataclass(frozen=True, slots=True)
class DataInterval:
    """``[start, end)`` in aware UTC."""

    start: datetime
    end: datetime


class Timetable(ABC):
    """A schedule. Subclass it for calendars cron cannot say ("weekdays at 02:00").

    Implement ``interval_starting_at_or_after``; the rest follows.
    """

    #: False for schedules that create no runs by themselves (None, "@once" after its run)
    periodic: bool = True
    description: str = ""

    @abstractmethod
    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        """The first interval whose start is at or after ``moment`` (None: there is none)."""

    def infer_manual_interval(self, logical_date: datetime) -> DataInterval:
        """The data interval of a run triggered by hand for ``logical_date``."""
        return DataInterval(logical_date, logical_date)

    def latest_complete_interval(self, now: datetime, earliest: datetime
                                 ) -> DataInterval | None:
        """The newest interval starting at or after ``earliest`` that ends by ``now``.

        Walks forward from ``earliest``; built-in timetables answer directly.
        """
        complete = [i for i in intervals_between(self, earliest, now) if i.end <= now]
        return complete[-1] if complete else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class NullTimetable(Timetable):
    """``schedule=None``: runs only when triggered."""

    periodic = False
    description = "None"

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        return None


class OnceTimetable(Timetable):
    """``"@once"``: one run, for the interval starting at ``start_date``."""

    periodic = False
    description = "@once"

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        return DataInterval(moment, moment)


class DatasetTimetable(Timetable):
    """``schedule=[ds, ...]`` (or a ``DatasetAny``/``DatasetAll``): runs when the datasets
    are updated, never by the clock. The scheduler, not the timetable, decides when."""

    periodic = False

    def __init__(self, condition: DatasetCondition) -> None:
        self.condition = condition
        self.description = f"datasets: {describe(condition)}"

    @property
    def uris(self) -> list[str]:
        """The URIs of the datasets the schedule names, each once."""
        return self.condition.uris

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        return None


class DeltaTimetable(Timetable):
    """A ``timedelta`` schedule: intervals of fixed length from ``start_date`` on."""

    def __init__(self, delta: timedelta, anchor: datetime) -> None:
        if delta <= timedelta(0):
            raise ScheduleError(f"schedule timedelta must be positive, got {delta}")
        self.delta = delta
        self.anchor = as_utc(anchor)  # a fixed real duration, whatever the zone's DST does
        self.description = str(delta)

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        moment = as_utc(moment)
        steps = -((self.anchor - moment) // self.delta) if moment > self.anchor else 0
        start = self.anchor + steps * self.delta
        return DataInterval(start, start + self.delta)

    def infer_manual_interval(self, logical_date: datetime) -> DataInterval:
        logical_date = as_utc(logical_date)
        return DataInterval(logical_date - self.delta, logical_date)

    def latest_complete_interval(self, now: datetime, earliest: datetime
                                 ) -> DataInterval | None:
        end = self.anchor + ((as_utc(now) - self.anchor) // self.delta) * self.delta
        return DataInterval(end - self.delta, end)


class CronTimetable(Timetable):
    """A cron expression evaluated in ``timezone``; each interval runs fire to next fire.

    Fire times are computed on local wall-clock time and then placed in the zone, so a daily
    02:00 job runs once a day at 02:00 local across DST changes (on the spring-forward day,
    when 02:00 does not exist, it runs at 03:00, as Airflow does).
    """

    def __init__(self, expression: str, timezone: tzinfo = UTC) -> None:
        from croniter import croniter

        cron = PRESETS.get(expression, expression)
        if expression.startswith("@") and expression not in PRESETS:
            raise ScheduleError(
                f"unknown schedule preset {expression!r}; valid: "
                f"{sorted([*PRESETS, '@once'])} or a cron expression"
            )
        if not croniter.is_valid(cron):
            raise ScheduleError(
                f"invalid cron expression {expression!r}; expected five fields 'minute hour "
                "day-of-month month day-of-week' with values in range, e.g. '0 2 * * *'"
            )
        self.expression = cron
        self.timezone = timezone
        self.description = expression

    def _fires(self, moment: datetime, *, forward: bool) -> Iterator[datetime]:
        """Fire times in UTC from ``moment`` on (or back). A repeated local hour (DST fall
        back) fires twice for crons that run every hour, once for the others, as Airflow."""
        from croniter import croniter

        local = as_utc(moment).astimezone(self.timezone).replace(tzinfo=None)
        # Start an hour early (late): a repeated local hour's second fire lies "behind" the
        # wall clock. Callers filter by the real instant.
        slack = timedelta(hours=1)
        it = croniter(self.expression, local - slack if forward else local + slack)
        while True:
            naive: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
            first = naive.replace(tzinfo=self.timezone, fold=0).astimezone(UTC)
            second = naive.replace(tzinfo=self.timezone, fold=1).astimezone(UTC)
            if second != first and self._hourly and second > first:
                yield from ((first, second) if forward else (second, first))
            else:
                yield first

    @property
    def _hourly(self) -> bool:
        return self.expression.split()[1] == "*"

    def next_fire(self, moment: datetime) -> datetime:
        """The first fire time at or after ``moment``."""
        moment = as_utc(moment)
        for fire in self._fires(moment, forward=True):
            if fire >= moment:
                return fire
        raise AssertionError("unreachable")  # pragma: no cover

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        start = self.next_fire(moment)
        end = self.next_fire(start + timedelta(seconds=1))
        return DataInterval(start, end)

    def infer_manual_interval(self, logical_date: datetime) -> DataInterval:
        logical_date = as_utc(logical_date)
        end = next(f for f in self._fires(logical_date + timedelta(seconds=1), forward=False)
                   if f <= logical_date)
        start = next(f for f in self._fires(end, forward=False) if f < end)
        return DataInterval(start, end)

    def latest_complete_interval(self, now: datetime, earliest: datetime
                                 ) -> DataInterval | None:
        return self.infer_manual_interval(now)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def make_timetable(schedule: Any, *, start_date: datetime | None) -> Timetable:
    """The timetable for a DAG's ``schedule`` (None, preset, cron, timedelta, Timetable)."""
    zone = start_date.tzinfo if start_date is not None and start_date.tzinfo else UTC
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, timedelta):
        return DeltaTimetable(schedule, start_date or datetime(1970, 1, 1, tzinfo=UTC))
    condition = dataset_condition(schedule)
    if condition is not None:
        return DatasetTimetable(condition)
    if isinstance(schedule, str):
        if schedule == "@once":
            return OnceTimetable()
        return CronTimetable(schedule, zone)
    raise ScheduleError(
        f"schedule {schedule!r} of type {type(schedule).__name__} is not supported; use None, "
        "a preset like '@daily', a cron string, a timedelta, a Timetable or a list of Datasets"
    )


def intervals_between(timetable: Timetable, first: datetime, last: datetime, *,
                      end_date: datetime | None = None) -> list[DataInterval]:
    """Every interval whose start (the logical date) lies in ``[first, last]``."""
    first, last = as_utc(first), as_utc(last)
    end_date = as_utc(end_date) if end_date is not None else None
    found: list[DataInterval] = []
    moment = first
    while True:
        interval = timetable.interval_starting_at_or_after(moment)
        if interval is None or interval.start > last:
            return found
        if end_date is not None and interval.start > end_date:
            return found
        found.append(interval)
        if not timetable.periodic:
            return found
        moment = interval.start + timedelta(microseconds=1)


def due_intervals(timetable: Timetable, *, start_date: datetime | None,
                  end_date: datetime | None, catchup: bool, now: datetime,
                  after: datetime | None) -> list[DataInterval]:
    """Intervals whose run should exist by ``now``, oldest first.

    ``after`` is the start of the newest interval that already has a scheduled run (None:
    none yet). With ``catchup`` every missed interval is returned; without it, only the
    latest complete one. An interval is complete once its end has passed.
    """
    if start_date is None:
        return []
    start_date, now = as_utc(start_date), as_utc(now)
    end_date = as_utc(end_date) if end_date is not None else None
    after = as_utc(after) if after is not None else None
    if not timetable.periodic:
        if after is not None:
            return []
        first = timetable.interval_starting_at_or_after(start_date)
        return [first] if first is not None and first.end <= now else []
    begin = start_date if after is None else after + timedelta(microseconds=1)
    if not catchup:
        latest = timetable.latest_complete_interval(now, begin)
        if latest is None or latest.start < begin or latest.end > now:
            return []
        if end_date is not None and latest.start > end_date:
            return []
        return [latest]
    return [i for i in intervals_between(timetable, begin, now, end_date=end_date)
            if i.end <= now]


def next_due_at(timetable: Timetable, *, start_date: datetime | None,
                end_date: datetime | None, after: datetime | None) -> datetime | None:
    """When the next interval after ``after`` completes (its run becomes due), or None."""
    if start_date is None or (not timetable.periodic and after is not None):
        return None
    start_date = as_utc(start_date)
    end_date = as_utc(end_date) if end_date is not None else None
    after = as_utc(after) if after is not None else None
    begin = start_date if after is None else after + timedelta(microseconds=1)
    interval = timetable.interval_starting_at_or_after(begin)
    if interval is None or (end_date is not None and interval.start > end_date):
        return None
    return interval.end
