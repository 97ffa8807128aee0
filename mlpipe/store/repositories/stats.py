"""Counts for monitoring: runs and task instances by state, task durations by bucket."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select

from mlpipe.store.database import Database
from mlpipe.store.repositories.common import RUN, TI


class StatsRepository(Database):
    """Aggregates the metrics endpoints read (each one query)."""

    def run_state_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(RUN.c.state, func.count()).group_by(RUN.c.state)).all()
        return {str(state): int(n) for state, n in rows}

    def ti_state_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TI.c.state, func.count()).group_by(TI.c.state)).all()
        return {str(state): int(n) for state, n in rows}

    def duration_buckets(self, bounds: Sequence[float]) -> tuple[list[int], int, float]:
        """Finished tries' durations: cumulative counts ``<= bound``, the count and the sum."""
        columns = [func.sum(case((TI.c.duration <= b, 1), else_=0)) for b in bounds]
        query = select(*columns, func.count(TI.c.duration), func.sum(TI.c.duration)).where(
            TI.c.duration.is_not(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        counts = [int(v or 0) for v in row[:len(bounds)]]
        return counts, int(row[len(bounds)] or 0), float(row[len(bounds) + 1] or 0.0)
