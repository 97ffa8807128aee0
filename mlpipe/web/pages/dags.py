"""The DAG list (paged, filterable by tag) and the pause toggle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.core.dag import DAG
from mlpipe.errors import DagDefinitionError
from mlpipe.web.context import WebContext
from mlpipe.web.pages.common import Op, Viewer, bounded, page_errors, render, web
from mlpipe.web.views.dag_list import PAGE_SIZE, Page, dag_rows


def register(router: APIRouter) -> None:
    router.add_api_route("/", home, methods=["GET"])
    router.add_api_route("/dags", dag_list, methods=["GET"])
    router.add_api_route("/dags/{dag_id}/pause", toggle_pause, methods=["POST"])


def home(user: Viewer) -> Response:
    return RedirectResponse("/dags", status_code=303)


@page_errors
def dag_list(request: Request, user: Viewer,
             offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
             tag: Annotated[str | None, Query(max_length=200)] = None,
             q: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """Every parsed DAG: pause toggle, schedule, last run, next run, tags; import errors."""
    ctx = web(request)
    bag = ctx.dags.bag()
    dags = sorted(bag.dags.values(), key=lambda d: d.dag_id)
    if tag:
        dags = [d for d in dags if tag in d.tags]
    if q:
        dags = [d for d in dags if q.lower() in d.dag_id.lower()]
    page = Page(bounded(offset, 0, max(len(dags) - 1, 0)), PAGE_SIZE, len(dags))
    shown = dags[page.offset:page.offset + page.limit]
    store = ctx.store
    recorded = {d.dag_id: d.is_paused for d in store.list_dags()}
    paused = {d.dag_id: recorded.get(d.dag_id, _paused_at_creation(ctx, d))
              for d in shown}
    last = {d.dag_id: store.latest_run(d.dag_id) for d in shown}
    scheduled = {d.dag_id: store.latest_scheduled_run(d.dag_id) for d in shown
                 if d.schedule is not None}
    errors = dict(bag.import_errors) or store.import_errors()
    return render(request, "pages/dags.html", user, rows=dag_rows(shown, paused, last, scheduled),
                  page=page, tag=tag, q=q, import_errors=sorted(errors.items()))


def _paused_at_creation(ctx: WebContext, dag: DAG) -> bool:
    """What a DAG no scheduler recorded yet will start as (``scheduler.runs.record_dags``)."""
    own = dag.is_paused_upon_creation
    return ctx.settings.dags_paused_at_creation if own is None else bool(own)


@page_errors
def toggle_pause(request: Request, user: Op, dag_id: str,
                 is_paused: Annotated[str, Form(max_length=5)]) -> Response:
    """Pause or unpause (``is_paused=true|false``); htmx gets the new toggle back."""
    if is_paused not in ("true", "false"):
        raise DagDefinitionError(f"is_paused must be 'true' or 'false', not {is_paused!r}")
    ctx = web(request)
    ctx.dag(dag_id)  # DagNotFoundError names the known DAGs
    paused = is_paused == "true"
    ctx.store.set_paused(dag_id, paused)
    if request.headers.get("hx-request") == "true":
        return render(request, "pages/_pause.html", user, dag_id=dag_id, is_paused=paused)
    return RedirectResponse("/dags", status_code=303)
