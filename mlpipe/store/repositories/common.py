"""What every repository shares: the tables, row -> record conversion, and small helpers."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import and_

from mlpipe.core.states import DagRunState, TaskInstanceState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.store.entities import TIKey
from mlpipe.store.rows import (
    ApiTokenRow,
    ArtifactInputRow,
    ArtifactRow,
    DagFileRow,
    DagRow,
    DagRunRow,
    ImportErrorRow,
    PoolRow,
    StateTransitionRow,
    TaskInstanceRow,
    UserRow,
    XComRow,
)

R = TypeVar("R")

TI = TaskInstanceRow.__table__
RUN = DagRunRow.__table__
XCOM = XComRow.__table__
TRANSITION = StateTransitionRow.__table__
DAG_TABLE = DagRow.__table__
DAG_FILE = DagFileRow.__table__
IMPORT_ERROR = ImportErrorRow.__table__
POOL = PoolRow.__table__
ARTIFACT = ArtifactRow.__table__
ARTIFACT_INPUT = ArtifactInputRow.__table__
USER = UserRow.__table__
API_TOKEN = ApiTokenRow.__table__

#: every task-instance state, as stored
ALL_STATES = frozenset(s.value for s in TaskInstanceState)
#: runs that hold (or wait for) a slot of their DAG
ACTIVE_RUN_STATES = (DagRunState.QUEUED.value, DagRunState.RUNNING.value)


def now() -> datetime:
    return datetime.now(UTC)


def record_of(cls: type[R], row: Any) -> R:
    """A plain record (dataclass ``cls``) from a result row with its fields."""
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def ti_row(dag_id: str, run_id: str, task_id: str, map_index: int, operator: str,
           max_tries: int, pool: str | None = None) -> dict[str, Any]:
    """A new task instance's row (state ``none``, no try yet)."""
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index,
            "operator": operator, "max_tries": max_tries, "state": S.NONE.value, "try_number": 0,
            "pool": pool}


def ti_where(key: TIKey) -> Any:
    return and_(TI.c.dag_id == key.dag_id, TI.c.run_id == key.run_id,
                TI.c.task_id == key.task_id, TI.c.map_index == key.map_index)
