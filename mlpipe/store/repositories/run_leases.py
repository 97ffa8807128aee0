"""Run leases: one scheduler (or ``trigger --wait``) drives a run at a time, renewed
while it lives."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import (
    or_,
    select,
    tuple_,
    update,
)

from mlpipe.store.database import Database
from mlpipe.store.entities import (
    DagRunRecord,
)
from mlpipe.store.repositories.common import (
    ACTIVE_RUN_STATES,
    RUN,
    record_of,
)
from mlpipe.store.repositories.common import (
    now as utc_now,
)


class RunLeaseRepository(Database):
    """Which holder drives each run, and until when."""

    def claim_runs(self, scheduler_id: str, lease: timedelta, *, dag_ids: Iterable[str],
                   limit: int = 50) -> list[DagRunRecord]:
        """Take queued or running runs that no live scheduler holds, oldest first.

        Rows are locked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two schedulers
        never take the same run; a run whose holder stopped renewing is taken over.
        """
        now = utc_now()
        free = or_(RUN.c.claimed_by.is_(None), RUN.c.claimed_by == scheduler_id,
                   RUN.c.lease_until < now)
        # Most ticks find nothing to take: ask that first, without the list of DAG ids
        # (1,000 bound ids cost more than the whole look-up; docs/engine-performance.md)
        with self.engine.connect() as conn:
            if conn.execute(select(RUN.c.id).where(RUN.c.state.in_(ACTIVE_RUN_STATES), free)
                            .limit(1)).first() is None:
                return []
        with self.writer.begin() as conn:
            rows = conn.execute(
                select(RUN).where(
                    RUN.c.dag_id.in_(list(dag_ids)),
                    RUN.c.state.in_(ACTIVE_RUN_STATES),
                    free)
                .order_by(RUN.c.logical_date, RUN.c.id).limit(limit)
                .with_for_update(skip_locked=True)).all()
            if rows:
                conn.execute(update(RUN).where(RUN.c.id.in_([r.id for r in rows])).values(
                    claimed_by=scheduler_id, lease_until=now + lease))
        return [record_of(DagRunRecord, r) for r in rows]

    def renew_leases(self, scheduler_id: str, lease: timedelta) -> set[tuple[str, str]]:
        """Extend this holder's leases; returns the ``(dag_id, run_id)`` it still holds."""
        with self.writer.begin() as conn:
            conn.execute(update(RUN).where(RUN.c.claimed_by == scheduler_id,
                                            RUN.c.state.in_(ACTIVE_RUN_STATES))
                         .values(lease_until=utc_now() + lease))
            held = conn.execute(select(RUN.c.dag_id, RUN.c.run_id).where(
                RUN.c.claimed_by == scheduler_id)).all()
        return {(r.dag_id, r.run_id) for r in held}

    def lease_run(self, holder: str, dag_id: str, run_id: str, lease: timedelta) -> bool:
        """Take one run for ``holder`` unless another live holder has it."""
        now = utc_now()
        with self.writer.begin() as conn:
            return bool(conn.execute(update(RUN).where(
                RUN.c.dag_id == dag_id, RUN.c.run_id == run_id,
                or_(RUN.c.claimed_by.is_(None), RUN.c.claimed_by == holder,
                    RUN.c.lease_until < now)
            ).values(claimed_by=holder, lease_until=now + lease)).rowcount)

    def release_dead_schedulers(self, alive: str) -> int:
        """Free runs held by other schedulers (on SQLite, where only ``alive`` can run)."""
        with self.writer.begin() as conn:
            return int(conn.execute(update(RUN).where(
                RUN.c.claimed_by.like("scheduler:%"), RUN.c.claimed_by != alive
            ).values(claimed_by=None, lease_until=None)).rowcount)

    def release_runs(self, scheduler_id: str, run_ids: Iterable[tuple[str, str]] | None = None
                     ) -> None:
        """Give runs back (all of this scheduler's, or the given ``(dag_id, run_id)``)."""
        with self.writer.begin() as conn:
            query = update(RUN).where(RUN.c.claimed_by == scheduler_id)
            if run_ids is not None:
                pairs = list(run_ids)
                if not pairs:
                    return
                query = query.where(tuple_(RUN.c.dag_id, RUN.c.run_id).in_(pairs))
            conn.execute(query.values(claimed_by=None, lease_until=None))
