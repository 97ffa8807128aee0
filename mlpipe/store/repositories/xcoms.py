"""XCom values: serialized, one row per (task instance, key)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    Connection,
    delete,
    text,
)

from mlpipe.store import hot_sql as hot
from mlpipe.store.database import Database
from mlpipe.store.entities import (
    TIKey,
)
from mlpipe.store.repositories.common import (
    XCOM,
)


class XComRepository(Database):
    """XCom values: serialized, one row per (task instance, key)."""

    def push_xcoms(self, key: TIKey, values: dict[str, str],
                   conn: Connection | None = None) -> None:
        """Store serialized XCom values of one instance, replacing earlier ones."""
        if conn is None:
            with self.writer.begin() as own:
                self.push_xcoms(key, values, own)
            return
        if values:
            base = key._asdict()
            hot.UPSERT_XCOM.run_many(conn, [{**base, "key": k, "value": v}
                                            for k, v in values.items()])

    def clear_xcoms(self, key: TIKey) -> None:
        with self.writer.begin() as conn:
            conn.execute(delete(XCOM).where(
                XCOM.c.dag_id == key.dag_id, XCOM.c.run_id == key.run_id,
                XCOM.c.task_id == key.task_id, XCOM.c.map_index == key.map_index))

    def get_xcoms(self, dag_id: str, run_id: str, task_id: str, key: str,
                  map_indexes: Iterable[int] | None = None) -> dict[int, str]:
        """Serialized values of ``key`` pushed by ``task_id``, by map index."""
        params = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "key": key}
        with self.engine.connect() as conn:
            found = {r.map_index: r.value for r in conn.execute(_SELECT_XCOMS, params)}
        if map_indexes is not None:
            wanted = set(map_indexes)
            return {i: v for i, v in found.items() if i in wanted}
        return found


_SELECT_XCOMS = text(
    "SELECT map_index, value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id "
    "AND task_id = :task_id AND key = :key")
