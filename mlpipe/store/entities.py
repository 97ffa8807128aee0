"""Plain records of the metadata database, kept apart from the SQLAlchemy rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


class TIKey(NamedTuple):
    """Identifies one task instance."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


@dataclass(frozen=True, slots=True)
class DagRecord:
    dag_id: str
    is_paused: bool
    fileloc: str | None
    last_parsed_at: datetime | None


@dataclass(frozen=True, slots=True)
class DagRunRecord:
    dag_id: str
    run_id: str
    run_type: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    conf: dict[str, Any]
    state: str
    created_at: datetime
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True, slots=True)
class TaskInstanceRecord:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str
    try_number: int
    max_tries: int
    operator: str
    hostname: str | None
    pid: int | None
    heartbeat_at: datetime | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    next_retry_at: datetime | None
    log_path: str | None
    error: str | None
    #: JSON list of the downstream task ids a branching try skipped (None: none)
    skip_downstream: str | None = None
    #: when a sensor waiting in ``up_for_reschedule`` pokes next (migration 0009)
    reschedule_date: datetime | None = None

    @property
    def key(self) -> TIKey:
        return TIKey(self.dag_id, self.run_id, self.task_id, self.map_index)


@dataclass(frozen=True, slots=True)
class SlaMissRecord:
    """A deadline a run or task instance missed: ``kind`` is ``task_sla`` or
    ``dag_deadline`` (then ``task_id`` is None)."""

    dag_id: str
    run_id: str
    task_id: str | None
    kind: str
    deadline_at: datetime
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StateTransition:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    from_state: str
    to_state: str
    at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A web user: ``password_hash`` is an argon2 hash, never the password."""

    name: str
    role: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DatasetEventRecord:
    """One update of a dataset (``extra``: for an S3 change, the keys)."""

    id: int
    uri: str
    extra: dict[str, Any]
    source_dag_id: str | None
    source_task_id: str | None
    source_run_id: str | None
    source_map_index: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """A dataset as ``mlpipe datasets list`` shows it."""

    uri: str
    extra: dict[str, Any]
    last_update: datetime | None
    events: int
    producing_tasks: list[str]
    consuming_dags: list[str]
