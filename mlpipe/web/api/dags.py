"""``GET /api/v1/dags``, ``GET|PATCH /api/v1/dags/{dag_id}`` and ``GET /importErrors``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlpipe.errors import DagNotFoundError
from mlpipe.masking import redact
from mlpipe.web.api.common import (
    DEFAULT_LIMIT,
    Limit,
    Offset,
    Op,
    Viewer,
    dag_id_of,
    order_key,
)
from mlpipe.web.api.shapes import dag_shape
from mlpipe.web.context import WebContext, context

DAG_ORDER = {"dag_id", "is_paused", "last_parsed_time", "fileloc"}


class DagPatch(BaseModel):
    """The body of ``PATCH /dags/{dag_id}``: only ``is_paused`` may change."""

    model_config = ConfigDict(extra="forbid")
    is_paused: bool


def dags_page(ctx: WebContext, *, limit: int, offset: int, order_by: str = "dag_id",
              tags: list[str] | None = None, paused: bool | None = None,
              only_active: bool = True, pattern: str | None = None) -> dict[str, Any]:
    """One page of DAGs in Airflow's ``DAGCollection`` shape."""
    overview, failed_files = ctx.store.dag_overview()
    records = {d: record for d, (record, _) in overview.items()}
    parsed = dict(ctx.dags.bag().dags)
    ids = set(parsed) if only_active else set(parsed) | set(records)
    if pattern:
        needle = pattern.lower()
        ids = {d for d in ids if needle in d.lower()}
    if paused is not None:
        ids = {d for d in ids if (records[d].is_paused if d in records else False) == paused}
    if tags:
        ids = {d for d in ids if d in parsed and set(tags) & set(parsed[d].tags)}
    field = {"last_parsed_time": "last_parsed_at"}.get(order_by.removeprefix("-"),
                                                       order_by.removeprefix("-"))

    def sort_key(dag_id: str) -> Any:
        value = dag_id if field == "dag_id" else getattr(records.get(dag_id), field, None)
        return (value is None, value if value is not None else "", dag_id)

    ordered = sorted(ids, key=sort_key, reverse=order_by.startswith("-"))
    return {"dags": [_shape(d, overview, parsed, failed_files)
                     for d in ordered[offset:offset + limit]],
            "total_entries": len(ordered)}


def _shape(dag_id: str, overview: dict[str, Any], parsed: dict[str, Any],
           failed_files: set[str]) -> dict[str, Any]:
    record, newest = overview.get(dag_id, (None, None))
    failed = bool(record is not None and record.fileloc and record.fileloc in failed_files)
    return dag_shape(dag_id, record, parsed.get(dag_id), has_import_errors=failed,
                     latest_scheduled=newest)


def one_dag(ctx: WebContext, dag_id: str) -> dict[str, Any]:
    overview, failed_files = ctx.store.dag_overview()
    parsed = dict(ctx.dags.bag().dags)
    if dag_id not in overview and dag_id not in parsed:
        raise DagNotFoundError(dag_id, sorted(set(overview) | set(parsed)))
    return _shape(dag_id, overview, parsed, failed_files)


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["DAG"])

    @found.get("/dags", summary="List DAGs")
    def list_dags(request: Request, _user: Viewer, limit: Limit = DEFAULT_LIMIT,
                  offset: Offset = 0, order_by: str = "dag_id",
                  tags: Annotated[list[str] | None, Query(max_length=50)] = None,
                  only_active: bool = True, paused: bool | None = None,
                  dag_id_pattern: Annotated[str | None, Query(max_length=250)] = None
                  ) -> Response:
        return JSONResponse(dags_page(context(request), limit=limit, offset=offset,
                         order_by=order_key(order_by, DAG_ORDER), tags=tags, paused=paused,
                         only_active=only_active, pattern=dag_id_pattern))

    @found.get("/dags/{dag_id}", summary="Get basic information about a DAG")
    def get_dag(request: Request, dag_id: str, _user: Viewer) -> Response:
        return JSONResponse(one_dag(context(request), dag_id_of(dag_id)))

    @found.patch("/dags/{dag_id}", summary="Pause or unpause a DAG")
    def patch_dag(request: Request, dag_id: str, body: DagPatch, _user: Op,
                  update_mask: Annotated[list[str] | None, Query(max_length=10)] = None
                  ) -> Response:
        ctx = context(request)
        dag_id = dag_id_of(dag_id)
        fields = [f for mask in (update_mask or ["is_paused"]) for f in mask.split(",")]
        if set(fields) - {"is_paused"}:
            raise HTTPException(400, f"only 'is_paused' can be updated, not "
                                     f"{sorted(set(fields) - {'is_paused'})}")
        one_dag(ctx, dag_id)  # 404 naming the known DAGs
        ctx.store.set_paused(dag_id, body.is_paused)
        return JSONResponse(one_dag(ctx, dag_id))

    @found.get("/importErrors", summary="List import errors", tags=["ImportError"])
    def import_errors(request: Request, _user: Viewer, limit: Limit = DEFAULT_LIMIT,
                      offset: Offset = 0) -> Response:
        ctx = context(request)
        errors = sorted(ctx.store.import_errors().items())
        page = errors[offset:offset + limit]
        return JSONResponse({"import_errors": [
            {"import_error_id": offset + i + 1, "timestamp": None, "filename": name,
             "stack_trace": redact(error)} for i, (name, error) in enumerate(page)],
            "total_entries": len(errors)})

    return found

