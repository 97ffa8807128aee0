"""The DAG list's rows: what each parsed DAG shows beside its pause flag and runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mlpipe.core.dag import DAG
from mlpipe.core.timetables import as_utc
from mlpipe.store.entities import DagRunRecord

PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class DagRow:
    dag_id: str
    is_paused: bool
    schedule: str | None
    tags: tuple[str, ...]
    description: str | None
    last_run: DagRunRecord | None
    next_run: datetime | None
    has_params: bool


def schedule_text(schedule: object) -> str | None:
    """How a schedule reads (``@daily``, ``0 2 * * *``, ``1 day, 0:00:00``, datasets...)."""
    if schedule is None:
        return None
    if isinstance(schedule, list | tuple):
        return "on " + ", ".join(getattr(d, "uri", str(d)) for d in schedule)
    return str(schedule)


def next_run_date(dag: DAG, latest_scheduled: DagRunRecord | None) -> datetime | None:
    """The logical date of the next scheduled run (what ``dags next-execution`` prints)."""
    timetable = getattr(dag, "timetable", None)
    if dag.start_date is None or timetable is None or not (
            timetable.periodic or dag.schedule == "@once"):
        return None
    if dag.schedule == "@once" and latest_scheduled is not None:
        return None
    begin = as_utc(dag.start_date) if latest_scheduled is None else \
        latest_scheduled.logical_date + timedelta(microseconds=1)
    interval = timetable.interval_starting_at_or_after(begin)
    if interval is None or (dag.end_date is not None and interval.start > as_utc(dag.end_date)):
        return None
    return interval.start


def dag_rows(dags: Sequence[DAG], paused: Mapping[str, bool],
             last_runs: Mapping[str, DagRunRecord | None],
             last_scheduled: Mapping[str, DagRunRecord | None]) -> list[DagRow]:
    """One row per DAG, in the order given."""
    return [DagRow(d.dag_id, paused.get(d.dag_id, False), schedule_text(d.schedule),
                   tuple(d.tags), d.description, last_runs.get(d.dag_id),
                   next_run_date(d, last_scheduled.get(d.dag_id)), bool(d.params))
            for d in dags]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: ``offset`` into ``total`` items, ``limit`` a page."""

    offset: int
    limit: int
    total: int

    @property
    def previous(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def first_shown(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_shown(self) -> int:
        return min(self.offset + self.limit, self.total)
