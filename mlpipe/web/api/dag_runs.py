"""``GET|POST /api/v1/dags/{dag_id}/dagRuns``, ``GET|PATCH .../dagRuns/{dag_run_id}``.

A POST creates a queued manual run through the engine (``Engine.trigger``: the conf is
checked against the DAG's params there, as for ``mlpipe dags trigger``); a running
``mlpipe scheduler`` picks it up. A PATCH marks a run success or failed
(``run_control.mark_run``, as ``mlpipe dags set-state``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlpipe.core.states import DagRunState
from mlpipe.scheduler import run_control
from mlpipe.store.repositories.listings import RUN_ORDER
from mlpipe.web.api.common import (
    DEFAULT_LIMIT,
    Limit,
    Offset,
    Op,
    Viewer,
    dag_id_of,
    order_key,
    run_id_of,
)
from mlpipe.web.api.shapes import run_shape
from mlpipe.web.context import context

RUN_STATES = sorted(s.value for s in DagRunState)


class DagRunCreate(BaseModel):
    """The body of ``POST /dags/{dag_id}/dagRuns`` (Airflow's ``DAGRun``, writable fields)."""

    model_config = ConfigDict(extra="forbid")
    dag_run_id: str | None = Field(default=None, max_length=250)
    logical_date: datetime | None = None
    execution_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    conf: dict[str, Any] | None = None
    note: str | None = Field(default=None, max_length=1000)


class DagRunStateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["success", "failed", "queued"]


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["DAGRun"])

    @found.get("/dags/{dag_id}/dagRuns", summary="List DAG runs (dag_id '~' for all DAGs)")
    def list_runs(request: Request, dag_id: str, _user: Viewer, limit: Limit = DEFAULT_LIMIT,
                  offset: Offset = 0, order_by: str = "id",
                  state: Annotated[list[str] | None, Query(max_length=20)] = None,
                  execution_date_gte: datetime | None = None,
                  execution_date_lte: datetime | None = None) -> Response:
        ctx = context(request)
        wanted = None if dag_id == "~" else dag_id_of(dag_id)
        unknown = sorted(set(state or ()) - set(RUN_STATES))
        if unknown:
            raise HTTPException(400, f"unknown run state(s) {unknown}; valid: {RUN_STATES}")
        runs, total = ctx.store.page_runs(
            wanted, limit=limit, offset=offset, states=state or (),
            order_by=order_key(order_by, RUN_ORDER), logical_gte=execution_date_gte,
            logical_lte=execution_date_lte)
        return JSONResponse({"dag_runs": [run_shape(r) for r in runs], "total_entries": total})

    @found.post("/dags/{dag_id}/dagRuns", summary="Trigger a new DAG run")
    def trigger(request: Request, dag_id: str, body: DagRunCreate, _user: Op) -> Response:
        ctx = context(request)
        dag = ctx.dag(dag_id_of(dag_id))
        if body.logical_date and body.execution_date and \
                body.logical_date != body.execution_date:
            raise HTTPException(400, "logical_date and execution_date differ; send one")
        record = ctx.engine.trigger(dag, conf=body.conf, run_id=body.dag_run_id,
                                    logical_date=body.logical_date or body.execution_date)
        return JSONResponse(run_shape(record))

    @found.get("/dags/{dag_id}/dagRuns/{dag_run_id}", summary="Get a DAG run")
    def get_run(request: Request, dag_id: str, dag_run_id: str, _user: Viewer
                ) -> Response:
        return JSONResponse(run_shape(context(request).store.get_run(dag_id_of(dag_id),
                                                        run_id_of(dag_run_id))))

    @found.patch("/dags/{dag_id}/dagRuns/{dag_run_id}",
                 summary="Mark a DAG run success or failed, or queue it again")
    def set_run_state(request: Request, dag_id: str, dag_run_id: str, body: DagRunStateUpdate,
                      _user: Op) -> Response:
        ctx = context(request)
        dag = ctx.dag(dag_id_of(dag_id))
        run_id = run_id_of(dag_run_id)
        if body.state == "queued":
            run_control.clear(ctx.store, dag, run_id=run_id, only_failed=False)
        else:
            run_control.mark_run(ctx.store, dag, run_id, body.state)
        return JSONResponse(run_shape(ctx.store.get_run(dag.dag_id, run_id)))

    return found
