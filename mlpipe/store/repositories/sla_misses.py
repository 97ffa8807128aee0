"""SLA misses: each missed task ``sla`` or DAG ``deadline`` recorded once, then listed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from mlpipe.store.database import Database
from mlpipe.store.entities import SlaMissRecord
from mlpipe.store.rows import SlaMissRow

SLA_MISS = SlaMissRow.__table__
#: stored ``task_id`` of a run's own deadline (the key columns cannot be NULL)
_RUN_LEVEL = ""


class SlaMissRepository(Database):
    """Missed deadlines; ``record_sla_miss`` is insert-once, so a miss is notified once."""

    def record_sla_miss(self, dag_id: str, run_id: str, task_id: str | None, *, kind: str,
                        deadline_at: datetime, recorded_at: datetime) -> bool:
        """Record a miss; False when it was recorded already (by this or another scheduler)."""
        try:
            with self.writer.begin() as conn:
                conn.execute(insert(SlaMissRow).values(
                    dag_id=dag_id, run_id=run_id, task_id=task_id or _RUN_LEVEL, kind=kind,
                    deadline_at=deadline_at, recorded_at=recorded_at))
        except IntegrityError:
            return False
        return True

    def list_sla_misses(self, dag_id: str | None = None) -> list[SlaMissRecord]:
        """Misses, oldest first (of one DAG if given)."""
        query = select(SLA_MISS).order_by(SLA_MISS.c.recorded_at, SLA_MISS.c.task_id)
        if dag_id is not None:
            query = query.where(SLA_MISS.c.dag_id == dag_id)
        with self.engine.connect() as conn:
            return [SlaMissRecord(r.dag_id, r.run_id, r.task_id or None, r.kind,
                                  r.deadline_at, r.recorded_at)
                    for r in conn.execute(query).all()]
