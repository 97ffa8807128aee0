"""The DAG list's rows, from the API's ``DAG`` objects (``web.api.dags.dags_page``) and the
newest run of each, and the pager every listing page shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def dag_rows(dags: Sequence[Mapping[str, Any]],
             last_runs: Mapping[str, DagRunRecord]) -> list[DagRow]:
    """One row per API ``DAG`` object, in the order given."""
    return [DagRow(d["dag_id"], bool(d["is_paused"]),
                   d.get("timetable_description") if d.get("schedule_interval") else None,
                   tuple(t["name"] for t in d.get("tags") or ()), d.get("description"),
                   last_runs.get(d["dag_id"]),
                   datetime.fromisoformat(d["next_dagrun"]) if d.get("next_dagrun") else None)
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
