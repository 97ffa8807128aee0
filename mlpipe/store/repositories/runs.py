"""DAG runs: created, read, listed, started within ``max_active_runs`` and ended."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from mlpipe.core.states import DagRunState
from mlpipe.errors import RunExistsError, RunNotFoundError
from mlpipe.store import hot_sql as hot
from mlpipe.store.database import Database
from mlpipe.store.entities import (
    DagRunRecord,
)
from mlpipe.store.repositories.common import (
    ACTIVE_RUN_STATES,
    DAG_TABLE,
    RUN,
    record_of,
    ti_row,
)
from mlpipe.store.repositories.common import (
    now as utc_now,
)


class RunRepository(Database):
    """DAG runs: created, read, listed, started within ``max_active_runs`` and ended."""

    def create_run(self, record: DagRunRecord,
                   task_instances: Iterable[tuple[Any, ...]]) -> DagRunRecord:
        """Insert a run and its task instances.

        Each instance is ``(task_id, map_index, operator, max_tries[, pool])``.
        """
        try:
            with self.writer.begin() as conn:
                insert_run(conn, record, task_instances)
        except IntegrityError:
            raise RunExistsError(record.dag_id, record.run_id) from None
        return record

    def get_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(RUN).where(RUN.c.dag_id == dag_id,
                                                  RUN.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFoundError(dag_id, run_id, [r.run_id for r in self.list_runs(dag_id)])
        return record_of(DagRunRecord, row)

    def list_runs(self, dag_id: str | None = None, *, states: Sequence[str] | None = None,
                  limit: int | None = None) -> list[DagRunRecord]:
        query = select(RUN).order_by(RUN.c.logical_date, RUN.c.id)
        if dag_id is not None:
            query = query.where(RUN.c.dag_id == dag_id)
        if states:
            query = query.where(RUN.c.state.in_(list(states)))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [record_of(DagRunRecord, r) for r in conn.execute(query).all()]

    def latest_run(self, dag_id: str) -> DagRunRecord | None:
        query = select(RUN).where(RUN.c.dag_id == dag_id).order_by(RUN.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return record_of(DagRunRecord, row) if row else None

    def set_run_state(self, dag_id: str, run_id: str, state: str, **values: Any) -> None:
        with self.writer.begin() as conn:
            conn.execute(update(RUN).where(RUN.c.dag_id == dag_id, RUN.c.run_id == run_id)
                         .values(state=state, **values))

    def end_run(self, dag_id: str, run_id: str, state: str, end_date: datetime) -> None:
        """Record a run's final state."""
        with self._write() as conn:
            row = hot.END_RUN.run(conn, {"dag_id": dag_id, "run_id": run_id, "state": state,
                                         "end_date": end_date}).fetchone()
        if row is None:
            raise RunNotFoundError(dag_id, run_id, [r.run_id for r in self.list_runs(dag_id)])

    def active_run_count(self, dag_id: str) -> int:
        """Runs of the DAG that are queued or running."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RUN).where(
                RUN.c.dag_id == dag_id, RUN.c.state.in_(ACTIVE_RUN_STATES))).scalar_one())

    def start_run_if_room(self, dag_id: str, run_id: str, max_active_runs: int) -> bool:
        """queued -> running if the DAG has fewer than ``max_active_runs`` running runs."""
        with self.writer.begin() as conn:
            conn.execute(select(DAG_TABLE.c.dag_id).where(DAG_TABLE.c.dag_id == dag_id)
                         .with_for_update())
            running = conn.execute(select(func.count()).select_from(RUN).where(
                RUN.c.dag_id == dag_id, RUN.c.state == DagRunState.RUNNING)).scalar_one()
            if running >= max_active_runs:
                return False
            return bool(conn.execute(update(RUN).where(
                RUN.c.dag_id == dag_id, RUN.c.run_id == run_id, RUN.c.state == DagRunState.QUEUED
            ).values(state=DagRunState.RUNNING, start_date=utc_now())).rowcount)

    def automated_run_at(self, dag_id: str, logical_date: datetime) -> DagRunRecord | None:
        """A scheduled or backfill run of ``dag_id`` for ``logical_date``, if any."""
        query = (select(RUN).where(RUN.c.dag_id == dag_id,
                                    RUN.c.logical_date == logical_date,
                                    RUN.c.run_type.in_(("scheduled", "backfill")))
                 .order_by(RUN.c.id).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return record_of(DagRunRecord, row) if row else None

    def latest_scheduled_run(self, dag_id: str) -> DagRunRecord | None:
        """The newest automated run (scheduled or backfill) by logical date."""
        query = (select(RUN).where(RUN.c.dag_id == dag_id,
                                    RUN.c.run_type.in_(("scheduled", "backfill")))
                 .order_by(RUN.c.logical_date.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return record_of(DagRunRecord, row) if row else None


def insert_run(conn: Any, record: DagRunRecord,
               task_instances: Iterable[tuple[Any, ...]]) -> None:
    """Insert a run and its task instances in the caller's transaction ``conn``."""
    hot.INSERT_RUN.run(conn, {f.name: getattr(record, f.name) for f in fields(DagRunRecord)})
    rows = [ti_row(record.dag_id, record.run_id, *ti) for ti in task_instances]
    if rows:
        hot.INSERT_TI.run_many(conn, rows)
