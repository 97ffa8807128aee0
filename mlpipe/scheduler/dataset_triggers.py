"""Dataset-triggered runs: which DAGs produce and consume which datasets, and the runs
their dataset events call for.

A DAG scheduled on datasets gets a run (``run_type`` ``dataset_triggered``) once its
condition holds over the datasets updated since its last such run. The store decides and
creates the run in one transaction with the DAG's watermark row locked, so two schedulers
never create two runs for the same events. The run's conf carries the events::

    {"triggering_dataset_events": [{"uri": ..., "event_id": ..., "timestamp": ...,
      "source_dag_id": ..., "source_task_id": ..., "source_run_id": ...,
      "keys_added": [...], "keys_changed": [...], "keys_deleted": [...],
      "counts": {"added": n, "changed": n, "deleted": n}, "truncated": bool}, ...]}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.datasets import Dataset
from mlpipe.core.timetables import DataInterval, DatasetTimetable
from mlpipe.errors import DagDefinitionError, RunExistsError
from mlpipe.scheduler.runs import build_dag_run
from mlpipe.store.entities import DagRunRecord, DatasetEventRecord
from mlpipe.store.metadata_store import MetadataStore

__all__ = ["MAX_EVENTS_IN_CONF", "consumed_datasets", "create_dataset_runs",
           "record_dataset_references", "triggering_conf"]

log = logging.getLogger("mlpipe.scheduler")

#: the newest events a triggered run's conf lists (the count says how many there were)
MAX_EVENTS_IN_CONF = 100


def consumed_datasets(dags: Iterable[DAG]) -> dict[str, Dataset]:
    """Every dataset some DAG is scheduled on, by URI."""
    found: dict[str, Dataset] = {}
    for dag in dags:
        if isinstance(dag.timetable, DatasetTimetable):
            for dataset in dag.timetable.condition.iter_datasets():
                found.setdefault(dataset.uri, dataset)
    return found


def record_dataset_references(store: MetadataStore, dags: Iterable[DAG], *,
                              removed: Iterable[str] = ()) -> None:
    """Store which DAGs consume and which tasks produce which datasets (for the trigger
    and ``mlpipe datasets list``); the ``removed`` DAG ids lose theirs."""
    consumers: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in removed}
    producers: dict[str, list[tuple[str, str, dict[str, Any]]]] = {d: [] for d in removed}
    for dag in dags:
        consumers[dag.dag_id] = {}
        if isinstance(dag.timetable, DatasetTimetable):
            consumers[dag.dag_id] = {d.uri: d.extra
                                     for d in dag.timetable.condition.iter_datasets()}
        producers[dag.dag_id] = [(t.task_id, d.uri, d.extra) for t in dag.task_dict.values()
                                 for d in getattr(t, "outlets", ())]
    store.sync_dataset_references(consumers, producers)


def triggering_conf(events: list[DatasetEventRecord]) -> dict[str, Any]:
    """The conf of a run triggered by ``events`` (oldest first)."""
    shown = events[-MAX_EVENTS_IN_CONF:]
    items = []
    for event in shown:
        extra = event.extra
        items.append({
            "uri": event.uri, "event_id": event.id,
            "timestamp": event.created_at.isoformat(),
            "source_dag_id": event.source_dag_id, "source_task_id": event.source_task_id,
            "source_run_id": event.source_run_id,
            "keys_added": list(extra.get("keys_added", [])),
            "keys_changed": list(extra.get("keys_changed", [])),
            "keys_deleted": list(extra.get("keys_deleted", [])),
            "counts": dict(extra.get("counts", {"added": 0, "changed": 0, "deleted": 0})),
            "truncated": bool(extra.get("truncated", False)),
        })
    conf: dict[str, Any] = {"triggering_dataset_events": items}
    if len(events) > len(shown):
        conf["triggering_dataset_event_count"] = len(events)
    return conf


def create_dataset_runs(store: MetadataStore, dags: Iterable[DAG], paused: set[str], *,
                        now: datetime | None = None) -> list[DagRunRecord]:
    """Create the run of every unpaused dataset-scheduled DAG whose condition now holds."""
    created = []
    for dag in dags:
        timetable = dag.timetable
        if dag.dag_id in paused or not isinstance(timetable, DatasetTimetable):
            continue

        def make_run(events: list[DatasetEventRecord], dag: DAG = dag
                     ) -> tuple[DagRunRecord, list[tuple[Any, ...]]]:
            when = now or datetime.now(UTC)
            interval = DataInterval(events[0].created_at, events[-1].created_at)
            return build_dag_run(dag, logical_date=when, conf=triggering_conf(events),
                                 run_type="dataset_triggered",
                                 run_id=f"dataset_triggered__{when.isoformat()}",
                                 data_interval=interval)

        try:
            record = store.create_dataset_triggered_run(
                dag.dag_id, timetable.uris, timetable.condition.evaluate, make_run)
        except RunExistsError:
            continue  # a run with that id exists: the events stay for the next loop
        except DagDefinitionError as exc:  # its params reject the conf: say so, keep going
            log.error("cannot create a dataset-triggered run of %s: %s", dag.dag_id, exc)
            continue
        if record is not None:
            count = len(record.conf["triggering_dataset_events"])
            log.info("created run %s of %s, triggered by %d dataset event(s)",
                     record.run_id, dag.dag_id, count)
            created.append(record)
    return created
