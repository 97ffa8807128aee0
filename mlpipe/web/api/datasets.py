"""``GET /api/v1/datasets`` and ``GET /api/v1/datasets/events`` in Airflow 2.10's shapes.

A ``Dataset`` carries its consuming DAGs and producing tasks; a ``DatasetEvent`` its source
task instance, its ``extra`` (for an S3 change: the keys added, changed and deleted) and the
dataset-triggered runs it started (``created_dagruns``, read from those runs' conf).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request

from mlpipe.masking import redact
from mlpipe.store.entities import DagRunRecord, DatasetEventRecord, DatasetSummary
from mlpipe.web.api.common import DEFAULT_LIMIT, Limit, Offset, Viewer, iso, order_key
from mlpipe.web.context import WebContext, context

#: the newest dataset-triggered runs of a DAG looked at to find the runs an event created
RUNS_SCANNED = 200
_DATASET_ORDER = ("id", "uri", "created_at", "updated_at")
_EVENT_ORDER = ("id", "timestamp")


def _masked(value: Any) -> Any:
    """A JSON value with registered secrets masked in every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def dataset_shape(summary: DatasetSummary, ids: dict[str, tuple[int, datetime]]
                  ) -> dict[str, Any]:
    """An Airflow ``Dataset``."""
    dataset_id, created = ids.get(summary.uri, (0, None))
    updated = summary.last_update or created
    return {
        "id": dataset_id, "uri": summary.uri, "extra": _masked(summary.extra),
        "created_at": iso(created), "updated_at": iso(updated),
        "consuming_dags": [{"dag_id": d, "created_at": iso(created), "updated_at": iso(created)}
                           for d in summary.consuming_dags],
        "producing_tasks": [{"dag_id": p.split(".", 1)[0], "task_id": p.split(".", 1)[-1],
                             "created_at": iso(created), "updated_at": iso(created)}
                            for p in summary.producing_tasks],
        "aliases": [],
    }


def run_shape(run: DagRunRecord) -> dict[str, Any]:
    """An Airflow ``BasicDAGRun``."""
    return {"run_id": run.run_id, "dag_id": run.dag_id, "logical_date": iso(run.logical_date),
            "start_date": iso(run.start_date), "end_date": iso(run.end_date),
            "data_interval_start": iso(run.data_interval_start),
            "data_interval_end": iso(run.data_interval_end), "state": run.state}


def event_shape(event: DatasetEventRecord, dataset_id: int,
                created: list[DagRunRecord]) -> dict[str, Any]:
    """An Airflow ``DatasetEvent``."""
    return {"id": event.id, "dataset_id": dataset_id, "dataset_uri": event.uri,
            "extra": _masked(event.extra), "source_dag_id": event.source_dag_id,
            "source_task_id": event.source_task_id, "source_run_id": event.source_run_id,
            "source_map_index": event.source_map_index,
            "created_dagruns": [run_shape(r) for r in created],
            "timestamp": iso(event.created_at)}


def triggering_event_ids(run: DagRunRecord) -> list[int]:
    """The ids of the dataset events a dataset-triggered run names in its conf."""
    if run.run_type != "dataset_triggered":
        return []
    items = run.conf.get("triggering_dataset_events") if isinstance(run.conf, dict) else None
    return [int(i["event_id"]) for i in items or ()
            if isinstance(i, dict) and isinstance(i.get("event_id"), int)]


def runs_created_by(ctx: WebContext, events: Iterable[DatasetEventRecord],
                    consumers: dict[str, list[str]]) -> dict[int, list[DagRunRecord]]:
    """``event id -> runs it triggered``, from the newest runs of the consuming DAGs."""
    wanted = {e.id for e in events}
    dag_ids = sorted({d for e in events for d in consumers.get(e.uri, ())})
    found: dict[int, list[DagRunRecord]] = {}
    for dag_id in dag_ids:
        runs, _ = ctx.store.page_runs(dag_id, limit=RUNS_SCANNED, order_by="-logical_date")
        for run in runs:
            for event_id in triggering_event_ids(run):
                if event_id in wanted:
                    found.setdefault(event_id, []).append(run)
    return found


def list_datasets(ctx: WebContext, *, limit: int, offset: int, order_by: str = "uri",
                  uri_pattern: str | None = None,
                  dag_ids: list[str] | None = None) -> dict[str, Any]:
    """A ``DatasetCollection`` page."""
    summaries = ctx.store.list_datasets()
    ids = ctx.store.dataset_ids()
    if uri_pattern:
        summaries = [s for s in summaries if uri_pattern in s.uri
                     or fnmatch.fnmatchcase(s.uri, uri_pattern)]
    if dag_ids:
        wanted = set(dag_ids)
        summaries = [s for s in summaries if wanted & (
            set(s.consuming_dags) | {p.split(".", 1)[0] for p in s.producing_tasks})]
    field = order_by.removeprefix("-")
    shaped = [dataset_shape(s, ids) for s in summaries]
    shaped.sort(key=lambda d: (d[field] is None, d[field] or ""),
                reverse=order_by.startswith("-"))
    return {"datasets": shaped[offset:offset + limit], "total_entries": len(shaped)}


def list_events(ctx: WebContext, *, limit: int, offset: int, order_by: str = "-timestamp",
                dataset_id: int | None = None, source_dag_id: str | None = None,
                source_task_id: str | None = None, source_run_id: str | None = None,
                source_map_index: int | None = None) -> dict[str, Any]:
    """A ``DatasetEventCollection`` page (newest first unless ``order_by`` says)."""
    ids = ctx.store.dataset_ids()
    uri = None
    if dataset_id is not None:
        uri = next((u for u, (i, _) in ids.items() if i == dataset_id), None)
        if uri is None:
            return {"dataset_events": [], "total_entries": 0}
    events, total = ctx.store.page_dataset_events(
        limit=limit, offset=offset, uri=uri, source_dag_id=source_dag_id,
        source_task_id=source_task_id, source_run_id=source_run_id,
        source_map_index=source_map_index, newest_first=order_by.startswith("-"))
    consumers = {s.uri: s.consuming_dags for s in ctx.store.list_datasets()}
    created = runs_created_by(ctx, events, consumers)
    return {"dataset_events": [event_shape(e, ids.get(e.uri, (0, None))[0],
                                           created.get(e.id, [])) for e in events],
            "total_entries": total}


Text = Annotated[str | None, Query(max_length=250)]


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["Dataset"])

    @found.get("/datasets", summary="List datasets")
    def get_datasets(request: Request, _user: Viewer, limit: Limit = DEFAULT_LIMIT,
                     offset: Offset = 0, order_by: Annotated[str, Query(max_length=40)] = "uri",
                     uri_pattern: Annotated[str | None, Query(max_length=2000)] = None,
                     dag_ids: Annotated[str | None, Query(max_length=4000)] = None
                     ) -> dict[str, Any]:
        order_key(order_by, _DATASET_ORDER)
        wanted = [d for d in (dag_ids or "").split(",") if d]
        return list_datasets(context(request), limit=limit, offset=offset, order_by=order_by,
                             uri_pattern=uri_pattern, dag_ids=wanted or None)

    @found.get("/datasets/events", summary="List dataset events")
    def get_dataset_events(request: Request, _user: Viewer, limit: Limit = DEFAULT_LIMIT,
                           offset: Offset = 0,
                           order_by: Annotated[str, Query(max_length=40)] = "-timestamp",
                           dataset_id: Annotated[int | None, Query(ge=0)] = None,
                           source_dag_id: Text = None, source_task_id: Text = None,
                           source_run_id: Text = None,
                           source_map_index: Annotated[int | None, Query(ge=-1)] = None
                           ) -> dict[str, Any]:
        order_key(order_by, _EVENT_ORDER)
        return list_events(context(request), limit=limit, offset=offset, order_by=order_by,
                           dataset_id=dataset_id, source_dag_id=source_dag_id,
                           source_task_id=source_task_id, source_run_id=source_run_id,
                           source_map_index=source_map_index)

    return found
