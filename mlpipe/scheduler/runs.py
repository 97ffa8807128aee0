"""Creating DAG runs: validated conf and params, ids, and their first task instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlpipe.core.dag import DAG
from mlpipe.core.ids import validate_run_id
from mlpipe.core.params import resolve_params
from mlpipe.core.states import DagRunState
from mlpipe.core.timetables import DataInterval
from mlpipe.errors import DagDefinitionError
from mlpipe.store.entities import DagRunRecord

if TYPE_CHECKING:
    from mlpipe.store.memory import MemoryStore
    from mlpipe.store.metadata_store import MetadataStore


def parse_logical_date(value: datetime | str | None) -> datetime:
    """A run's logical date: now, a datetime (naive means UTC) or an ISO 8601 string."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DagDefinitionError(
                f"logical date {value!r} is not an ISO 8601 date or datetime "
                "(for example 2024-01-31 or 2024-01-31T02:00:00+00:00)"
            ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def create_dag_run(store: MetadataStore | MemoryStore, dag: DAG, *,
                   logical_date: datetime | str | None,
                   conf: Mapping[str, Any] | None = None, run_type: str = "manual",
                   run_id: str | None = None,
                   data_interval: DataInterval | None = None) -> DagRunRecord:
    """Insert a queued run of ``dag`` with one task instance per task (conf is checked).

    Manual runs get the data interval the DAG's timetable infers for their logical date.
    A given ``run_id`` must be a legal run id (``InvalidTaskIdError`` otherwise): it
    becomes a log and artifact path segment.
    """
    record, instances = build_dag_run(dag, logical_date=logical_date, conf=conf,
                                      run_type=run_type, run_id=run_id,
                                      data_interval=data_interval)
    return store.create_run(record, instances)


def build_dag_run(dag: DAG, *, logical_date: datetime | str | None,
                  conf: Mapping[str, Any] | None = None, run_type: str = "manual",
                  run_id: str | None = None, data_interval: DataInterval | None = None
                  ) -> tuple[DagRunRecord, list[tuple[Any, ...]]]:
    """The checked record of a new queued run and its task instances, not yet stored
    (``create_dag_run`` stores them; the dataset trigger stores them in its transaction)."""
    if conf is not None and not isinstance(conf, Mapping):
        raise DagDefinitionError(f"conf must be a JSON object (a dict), got {type(conf).__name__}")
    conf = dict(conf or {})
    resolve_params(dag.params, conf)  # raises ParamValidationError naming the param
    when = parse_logical_date(logical_date)
    interval = data_interval or (dag.timetable.infer_manual_interval(when)
                                 if run_type == "manual" else DataInterval(when, when))
    now = datetime.now(UTC)
    if run_id is None:
        run_id = f"{run_type}__{when.isoformat()}"
    run_id = validate_run_id(run_id)  # it becomes a log and artifact path segment
    record = DagRunRecord(
        dag_id=dag.dag_id, run_id=run_id, run_type=run_type,
        logical_date=when, data_interval_start=interval.start,
        data_interval_end=interval.end, conf=conf,
        state=DagRunState.QUEUED, created_at=now, start_date=None, end_date=None,
    )
    instances = [(t.task_id, -1, t.task_type, t.retries, t.pool) for t in dag.task_dict.values()]
    return record, instances


def record_dags(store: MetadataStore, dags: Iterable[DAG], *, paused_by_default: bool) -> None:
    """Record parsed DAGs; a new one starts paused per its ``is_paused_upon_creation`` or,
    when that is None, ``MLPIPE_DAGS_PAUSED_AT_CREATION``. Existing rows keep their state."""
    groups: dict[bool, dict[str, str]] = {True: {}, False: {}}
    for dag in dags:
        paused = dag.is_paused_upon_creation
        groups[paused_by_default if paused is None else paused][dag.dag_id] = dag.fileloc
    for paused, files in groups.items():
        store.sync_dags(files, paused_on_creation=paused)


def schedule_text(schedule: Any) -> str | None:
    """A parsed DAG's schedule as ``mlpipe dags list`` shows it (datasets described)."""
    from mlpipe.core.datasets import dataset_condition, describe

    if schedule is None:
        return None
    condition = dataset_condition(schedule)  # a DAG that parsed has a valid one
    return f"datasets: {describe(condition)}" if condition is not None else str(schedule)


def record_listing(store: MetadataStore, dags: Iterable[DAG],
                   stamps: dict[str, tuple[int, int]]) -> None:
    """Record what ``mlpipe dags list`` shows without parsing (the DAGs already recorded by
    ``record_dags``), with the stamps of the files parsed (``DagFolderWatcher.stamps``)."""
    import json

    entries = []
    for dag in dags:
        stamp = stamps.get(dag.fileloc)
        entries.append({
            "dag_id": dag.dag_id, "schedule": schedule_text(dag.schedule),
            "tags": json.dumps(list(dag.tags)), "task_count": len(dag.task_dict),
            "owners": ",".join(sorted({t.owner for t in dag.task_dict.values()})),
            "file_mtime_ns": stamp[0] if stamp else None,
            "file_size": stamp[1] if stamp else None})
    store.record_listing(stamps, entries)


def is_scheduled(dag: DAG) -> bool:
    """False for a DAG whose runs are only triggered."""
    return dag.start_date is not None and (dag.timetable.periodic or dag.schedule == "@once")


def next_logical_dates(dag: DAG, latest: datetime | None, num: int = 1) -> list[DataInterval]:
    """The data intervals of the next ``num`` scheduled runs after the automated run at
    ``latest`` (None: none yet); empty for a DAG that is only triggered."""
    if not is_scheduled(dag) or dag.start_date is None:
        return []
    begin = dag.start_date if latest is None else latest + timedelta(microseconds=1)
    found: list[DataInterval] = []
    for _ in range(num):
        interval = dag.timetable.interval_starting_at_or_after(begin)
        if interval is None or (dag.end_date is not None and interval.start > dag.end_date):
            break
        found.append(interval)
        begin = interval.start + timedelta(microseconds=1)
    return found
