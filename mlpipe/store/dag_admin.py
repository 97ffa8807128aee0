"""Deleting a DAG's records from the metadata database (``mlpipe dags delete``)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, func, select

from mlpipe.store.metadata_store import MetadataStore
from mlpipe.store.rows import (
    DagRow,
    DagRunRow,
    StateTransitionRow,
    TaskInstanceRow,
    XComRow,
)

#: children first: a run's task instances and XComs reference it
_TABLES = [cast(Table, row.__table__) for row in
           (StateTransitionRow, XComRow, TaskInstanceRow, DagRunRow, DagRow)]


def delete_dag(store: MetadataStore, dag_id: str) -> int:
    """Remove the DAG's row, runs, task instances, XComs and state history in one
    transaction; returns how many runs it had. Artifacts and their lineage are kept: the
    files they describe still exist."""
    runs = cast(Table, DagRunRow.__table__)
    with store.writer.begin() as conn:
        count = int(conn.execute(select(func.count()).select_from(runs)
                                 .where(runs.c.dag_id == dag_id)).scalar_one())
        for table in _TABLES:
            conn.execute(delete(table).where(table.c.dag_id == dag_id))
    return count
