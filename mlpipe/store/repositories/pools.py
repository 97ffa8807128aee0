"""Pools: named slot limits shared by task instances across runs and schedulers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from mlpipe.store.database import Database
from mlpipe.store.repositories.common import (
    POOL,
    TI,
)
from mlpipe.store.rows import ACTIVE_STATES_SQL


class PoolRepository(Database):
    """Pools: named slot limits shared by task instances across runs and schedulers."""

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        with self.writer.begin() as conn:
            changed = conn.execute(update(POOL).where(POOL.c.name == name).values(
                slots=slots, description=description)).rowcount
            if not changed:
                conn.execute(insert(POOL).values(name=name, slots=slots,
                                                  description=description))

    def list_pools(self) -> list[dict[str, Any]]:
        """Pools with their slots and how many are in use (queued or running)."""
        with self.engine.connect() as conn:
            used = dict(conn.execute(
                select(TI.c.pool, func.count()).where(TI.c.pool.is_not(None),
                                                       text(ACTIVE_STATES_SQL))
                .group_by(TI.c.pool)).all())
            rows = conn.execute(select(POOL).order_by(POOL.c.name)).all()
        return [{"pool": r.name, "slots": r.slots, "used": used.get(r.name, 0),
                 "description": r.description} for r in rows]

    def delete_pool(self, name: str) -> bool:
        with self.writer.begin() as conn:
            return bool(conn.execute(delete(POOL).where(POOL.c.name == name)).rowcount)
