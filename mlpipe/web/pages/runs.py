"""The run page, the task-instance page with each try's log (and its live tail), lineage."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import ArtifactNotRecordedError, TaskNotFoundError
from mlpipe.masking import redact
from mlpipe.runtime.lineage_report import lineage_tree
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.web.context import WebContext
from mlpipe.web.pages.common import Viewer, page_errors, render, web
from mlpipe.web.pages.log_reader import read_try_log
from mlpipe.web.views.ansi import ansi_to_html
from mlpipe.web.views.mlflow_links import links_for_uris, run_url

MapIndex = Annotated[int, Query(ge=-1, le=1_000_000)]
_WRITING = (S.RUNNING, S.QUEUED)


def register(router: APIRouter) -> None:
    router.add_api_route("/dags/{dag_id}/runs/{run_id}", run_page, methods=["GET"])
    router.add_api_route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", task_page,
                         methods=["GET"])
    router.add_api_route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log", log_tail,
                         methods=["GET"])
    router.add_api_route("/lineage", lineage_page, methods=["GET"])


@page_errors
def run_page(request: Request, user: Viewer, dag_id: str, run_id: str) -> Response:
    """Tasks with states and durations, the conf, artifacts and lineage, the MLflow run."""
    ctx = web(request)
    dag = ctx.dag(dag_id)
    run = ctx.store.get_run(dag_id, run_id)
    order = {t.task_id: i for i, t in enumerate(dag.topological_sort())}
    records = sorted(ctx.store.list_tis(dag_id, run_id),
                     key=lambda r: (order.get(r.task_id, len(order)), r.map_index))
    artifacts = _artifacts(ctx, dag_id, run_id)
    ui = ctx.settings.mlflow_ui_url
    parent = ctx.store.get_mlflow_run_id(dag_id, run_id)
    return render(request, "pages/run.html", user, dag=dag, run=run, records=records,
                  conf=redact(json.dumps(run.conf, indent=2, sort_keys=True, default=str)),
                  artifacts=artifacts, mlflow_run=run_url(ui, parent) if parent else None,
                  mlflow_run_id=parent,
                  model_links=links_for_uris(ui, [a["uri"] for a in artifacts]),
                  live=run.state in ("queued", "running"))


def _artifacts(ctx: WebContext, dag_id: str, run_id: str, *, task_id: str | None = None,
               map_index: int | None = None) -> list[dict[str, Any]]:
    """The run's artifacts (or one instance's), each with its inputs and their producers."""
    rows = ctx.store.run_artifacts(dag_id, run_id)
    if task_id is not None:
        rows = [r for r in rows if r["task_id"] == task_id and
                (map_index is None or r["map_index"] == map_index)]
    for row in rows:
        inputs = ctx.store.artifact_inputs(row["id"])
        for source in inputs:
            producer = ctx.store.artifact_by_uri(source["uri"])
            source["producer"] = None if producer is None else {
                k: producer[k] for k in ("dag_id", "run_id", "task_id", "map_index")}
        row["inputs"] = inputs
    return rows


def _instance(ctx: WebContext, dag_id: str, run_id: str, task_id: str,
              map_index: int) -> TaskInstanceRecord:
    dag = ctx.dag(dag_id)
    dag.get_task(task_id)  # TaskNotFoundError names the DAG's tasks
    ctx.store.get_run(dag_id, run_id)  # RunNotFoundError names the DAG's runs
    record = ctx.store.get_ti(TIKey(dag_id, run_id, task_id, map_index))
    if record is None:
        indexes = [f"{r.task_id}[{r.map_index}]" for r in
                   ctx.store.list_tis(dag_id, run_id, task_ids=[task_id])]
        raise TaskNotFoundError(dag_id, f"{task_id}[{map_index}]", indexes)
    return record


@page_errors
def task_page(request: Request, user: Viewer, dag_id: str, run_id: str, task_id: str,
              map_index: MapIndex = -1,
              try_number: Annotated[int | None, Query(alias="try", ge=1, le=10_000)] = None
              ) -> Response:
    """One task instance: its tries, the chosen try's log (tailed while it runs), links."""
    ctx = web(request)
    siblings = [r for r in ctx.store.list_tis(dag_id, run_id, task_ids=[task_id])
                if r.map_index >= 0]
    if map_index == -1 and siblings:  # a mapped task: open its first instance
        return RedirectResponse(f"{request.url.path}?map_index={siblings[0].map_index}",
                                status_code=303)
    record = _instance(ctx, dag_id, run_id, task_id, map_index)
    shown = try_number or record.try_number
    if record.try_number and not 1 <= shown <= record.try_number:
        return render(request, "pages/error.html", user, 404,
                      message=f"{record.key} has tries 1..{record.try_number}; there is no "
                              f"try {shown}")
    writing = shown == record.try_number and record.state in _WRITING
    piece = read_try_log(ctx.engine.logs_root, ctx.settings.remote_log_uri, record, shown, 0,
                         writing=writing, tail=True)
    artifacts = _artifacts(ctx, dag_id, run_id, task_id=task_id, map_index=map_index)
    links = links_for_uris(ctx.settings.mlflow_ui_url,
                           [a["uri"] for a in artifacts]
                           + [i["uri"] for a in artifacts for i in a["inputs"]])
    return render(request, "pages/task.html", user, dag=ctx.dag(dag_id), record=record,
                  siblings=siblings, try_shown=shown, piece=piece,
                  log_html=ansi_to_html(piece.text), writing=writing, artifacts=artifacts,
                  mlflow_links=links, error=redact(record.error or ""))


@page_errors
def log_tail(request: Request, user: Viewer, dag_id: str, run_id: str, task_id: str,
             offset: Annotated[int, Query(ge=0, le=1 << 40)],
             map_index: MapIndex = -1,
             try_number: Annotated[int, Query(alias="try", ge=1, le=10_000)] = 1
             ) -> Response:
    """What try ``try`` logged after ``offset``, and a poller for more while it runs."""
    ctx = web(request)
    record = _instance(ctx, dag_id, run_id, task_id, map_index)
    writing = try_number == record.try_number and record.state in _WRITING
    piece = read_try_log(ctx.engine.logs_root, ctx.settings.remote_log_uri, record, try_number,
                         offset, writing=writing)
    return render(request, "pages/_log_tail.html", user, record=record, try_shown=try_number,
                  piece=piece, log_html=ansi_to_html(piece.text), writing=writing)


@page_errors
def lineage_page(request: Request, user: Viewer,
                 uri: Annotated[str, Query(min_length=1, max_length=2000)]) -> Response:
    """The chain from an artifact back to its sources (``mlpipe lineage URI``)."""
    ctx = web(request)
    try:
        tree = lineage_tree(ctx.store, uri)
    except ArtifactNotRecordedError as exc:
        return render(request, "pages/error.html", user, 404, message=str(exc))
    return render(request, "pages/lineage.html", user, tree=tree,
                  links=links_for_uris(ctx.settings.mlflow_ui_url, [uri]))
