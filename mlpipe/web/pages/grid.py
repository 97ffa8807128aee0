"""The grid (runs x tasks) and the graph view of one DAG."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.core.states import DagRunState
from mlpipe.store.entities import TaskInstanceRecord
from mlpipe.web.pages.common import Viewer, bounded, page_errors, render, web
from mlpipe.web.views.dag_list import Page
from mlpipe.web.views.graph import layout_graph
from mlpipe.web.views.grid import build_grid
from mlpipe.web.views.states import summary_state

#: runs a grid page shows unless told (``limit``), and at most
GRID_RUNS = 25
MAX_GRID_RUNS = 100
_ACTIVE = (DagRunState.QUEUED, DagRunState.RUNNING)
#: dataset-triggered runs whose triggering events the DAG page lists, and SLA misses shown
TRIGGERED_SHOWN = 5
SLA_MISSES_SHOWN = 20


def register(router: APIRouter) -> None:
    router.add_api_route("/dags/{dag_id}", dag_home, methods=["GET"])
    router.add_api_route("/dags/{dag_id}/grid", grid, methods=["GET"])
    router.add_api_route("/dags/{dag_id}/graph", graph, methods=["GET"])


def dag_home(dag_id: str, user: Viewer) -> Response:
    return RedirectResponse(f"/dags/{dag_id}/grid", status_code=303)


@page_errors
def grid(request: Request, user: Viewer, dag_id: str,
         offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
         limit: Annotated[int, Query(ge=1)] = GRID_RUNS,
         collapse: Annotated[str, Query(max_length=4000)] = "") -> Response:
    """The newest ``limit`` runs after skipping ``offset`` newer ones, oldest on the left."""
    ctx = web(request)
    dag = ctx.dag(dag_id)
    limit = bounded(limit, 1, MAX_GRID_RUNS)
    runs, total = ctx.store.page_runs(dag_id, limit=limit, offset=offset,
                                      order_by="-logical_date")
    runs.reverse()
    by_run: dict[str, list[TaskInstanceRecord]] = {r.run_id: [] for r in runs}
    for record in ctx.store.tis_of_runs(dag_id, by_run):
        by_run[record.run_id].append(record)
    collapsed = {g for g in collapse.split(",") if g}
    view = build_grid(dag, runs, by_run, collapsed=collapsed)
    paused = ctx.store.get_dag(dag_id)
    triggered = [(r, r.conf.get("triggering_dataset_events") or []) for r in reversed(runs)
                 if r.run_type == "dataset_triggered" and isinstance(r.conf, dict)]
    return render(request, "pages/grid.html", user, dag=dag, grid=view,
                  page=Page(offset, limit, total), collapsed=collapsed,
                  live=any(r.state in _ACTIVE for r in runs),
                  is_paused=bool(paused and paused.is_paused),
                  triggered=triggered[:TRIGGERED_SHOWN],
                  sla_misses=ctx.store.list_sla_misses(dag_id)[::-1][:SLA_MISSES_SHOWN])


@page_errors
def graph(request: Request, user: Viewer, dag_id: str,
          run_id: Annotated[str | None, Query(max_length=250)] = None) -> Response:
    """The DAG's tasks and edges, coloured by their state in one run (the newest by default)."""
    ctx = web(request)
    dag = ctx.dag(dag_id)
    run = ctx.store.get_run(dag_id, run_id) if run_id else ctx.store.latest_run(dag_id)
    states: dict[str, str] = {}
    if run is not None:
        found: dict[str, list[str]] = {}
        for record in ctx.store.list_tis(dag_id, run.run_id):
            found.setdefault(record.task_id, []).append(record.state)
        states = {task_id: summary_state(s) for task_id, s in found.items()}
    return render(request, "pages/graph.html", user, dag=dag, run=run,
                  layout=layout_graph(dag, states),
                  live=run is not None and run.state in _ACTIVE)
