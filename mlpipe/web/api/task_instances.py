"""Task instances of a run: list, get, set state, clear (with ``dry_run``).

Clear and set-state go through ``scheduler.run_control``, the code ``mlpipe tasks clear``
and ``mlpipe tasks set-state`` use; a dry run lists what a clear would reset (the pages
show it before asking to confirm).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlpipe.core.states import TaskInstanceState
from mlpipe.errors import TaskNotFoundError
from mlpipe.scheduler import run_control
from mlpipe.store.entities import TIKey
from mlpipe.store.repositories.listings import TI_ORDER
from mlpipe.web.api.common import (
    DEFAULT_LIMIT,
    Limit,
    Offset,
    Op,
    Viewer,
    dag_id_of,
    order_key,
    run_id_of,
    task_id_of,
)
from mlpipe.web.api.shapes import ti_reference, ti_shape
from mlpipe.web.context import WebContext, context

TI_STATES = sorted(s.value for s in TaskInstanceState)


class ClearTaskInstances(BaseModel):
    """The body of ``POST /dags/{dag_id}/clearTaskInstances`` (Airflow's defaults)."""

    model_config = ConfigDict(extra="forbid")
    dry_run: bool = True
    task_ids: list[Annotated[str, Field(max_length=250)]] | None = Field(default=None,
                                                                         max_length=1000)
    dag_run_id: str | None = Field(default=None, max_length=250)
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    only_running: bool = False
    include_subdags: bool = False
    include_parentdag: bool = False
    reset_dag_runs: bool = True
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


class UpdateTaskInstance(BaseModel):
    """The body of ``PATCH .../taskInstances/{task_id}``: mark success, failed or skipped."""

    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False
    new_state: Literal["success", "failed", "skipped"]


def _task_ids(ctx: WebContext, dag: Any, body: ClearTaskInstances) -> str | None:
    """The clear's task selection as the anchored regex ``run_control`` takes."""
    if not body.task_ids:
        return None
    ids = {task_id_of(t) for t in body.task_ids}
    for task_id in ids:
        dag.get_task(task_id)  # TaskNotFoundError names the known tasks
    if body.include_upstream:
        for task_id in list(ids):
            ids.update(_ancestors(dag, task_id))
    return "^(" + "|".join(re.escape(t) for t in sorted(ids)) + ")$"


def _ancestors(dag: Any, task_id: str) -> set[str]:
    found: set[str] = set()
    todo = [task_id]
    while todo:
        for upstream in dag.get_task(todo.pop()).upstream_task_ids:
            if upstream not in found:
                found.add(upstream)
                todo.append(upstream)
    return found


def _run_ids(ctx: WebContext, dag_id: str, body: ClearTaskInstances) -> list[str] | None:
    if body.start_date is None and body.end_date is None:
        return None
    runs = ctx.store.list_runs(dag_id)
    return [r.run_id for r in runs
            if (body.start_date is None or r.logical_date >= body.start_date)
            and (body.end_date is None or r.logical_date <= body.end_date)]


def clear_task_instances(ctx: WebContext, dag_id: str, body: ClearTaskInstances
                         ) -> dict[str, Any]:
    """What ``POST clearTaskInstances`` does (or, with ``dry_run``, would do)."""
    dag = ctx.dag(dag_id)
    regex = _task_ids(ctx, dag, body)
    run_id = run_id_of(body.dag_run_id) if body.dag_run_id else None
    run_ids = _run_ids(ctx, dag.dag_id, body)
    options: dict[str, Any] = {"run_id": run_id, "task_regex": regex,
                               "downstream": body.include_downstream,
                               "only_failed": body.only_failed, "run_ids": run_ids}
    records = [r for r in run_control.matching(ctx.store, dag, **options)
               if run_control.clearable(r, stop_running=body.only_running)
               and (not body.only_running or r.state in ("running", "queued"))]
    runs = {rid: ctx.store.get_run(dag.dag_id, rid) for rid in {r.run_id for r in records}}
    if body.dry_run:
        return {"task_instances": [ti_reference(r, runs[r.run_id]) for r in records]}
    cleared = run_control.clear(ctx.store, dag, stop_running=body.only_running, **options)
    return {"task_instances": [ti_reference(k, runs[k.run_id]) for k in cleared
                               if k.run_id in runs]}


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["TaskInstance"])

    @found.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
               summary="List task instances of a DAG run")
    def list_tis(request: Request, dag_id: str, dag_run_id: str, _user: Viewer,
                 limit: Limit = DEFAULT_LIMIT, offset: Offset = 0, order_by: str = "task_id",
                 state: Annotated[list[str] | None, Query(max_length=20)] = None
                 ) -> Response:
        ctx = context(request)
        run = ctx.store.get_run(dag_id_of(dag_id), run_id_of(dag_run_id))
        unknown = sorted(set(state or ()) - set(TI_STATES))
        if unknown:
            raise HTTPException(400, f"unknown state(s) {unknown}; valid: {TI_STATES}")
        records, total = ctx.store.page_tis(run.dag_id, run.run_id, limit=limit, offset=offset,
                                            states=state or (),
                                            order_by=order_key(order_by, TI_ORDER))
        dag = ctx.dags.get(run.dag_id)
        return JSONResponse({"task_instances": [ti_shape(r, run, dag) for r in records],
                "total_entries": total})

    @found.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
               summary="Get a task instance")
    def get_ti(request: Request, dag_id: str, dag_run_id: str, task_id: str, _user: Viewer,
               map_index: Annotated[int, Query(ge=-1)] = -1) -> Response:
        ctx = context(request)
        run = ctx.store.get_run(dag_id_of(dag_id), run_id_of(dag_run_id))
        record = find_ti(ctx, TIKey(run.dag_id, run.run_id, task_id_of(task_id), map_index))
        return JSONResponse(ti_shape(record, run, ctx.dags.get(run.dag_id)))

    @found.patch("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
                 summary="Mark a task instance success, failed or skipped")
    def set_ti_state(request: Request, dag_id: str, dag_run_id: str, task_id: str,
                     body: UpdateTaskInstance, _user: Op,
                     map_index: Annotated[int, Query(ge=-1)] = -1) -> Response:
        ctx = context(request)
        dag = ctx.dag(dag_id_of(dag_id))
        run = ctx.store.get_run(dag.dag_id, run_id_of(dag_run_id))
        key = TIKey(dag.dag_id, run.run_id, task_id_of(task_id), map_index)
        record = find_ti(ctx, key)
        if not body.dry_run:
            run_control.set_task_state(ctx.store, dag, key, body.new_state)
        return JSONResponse(ti_reference(record, run))

    @found.post("/dags/{dag_id}/clearTaskInstances", summary="Clear task instances")
    def clear(request: Request, dag_id: str, body: ClearTaskInstances, _user: Op
              ) -> Response:
        return JSONResponse(clear_task_instances(context(request), dag_id_of(dag_id), body))

    return found


def find_ti(ctx: WebContext, key: TIKey) -> Any:
    """The task instance, or ``TaskNotFoundError`` (404) naming the run's tasks."""
    record = ctx.store.get_ti(key)
    if record is None:
        raise TaskNotFoundError(key.dag_id, f"{key.task_id}[{key.map_index}]", sorted(
            {r.task_id for r in ctx.store.list_tis(key.dag_id, key.run_id)}))
    return record
