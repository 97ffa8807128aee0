"""The DAG list (paged, filterable by tag) and the pause toggle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.errors import DagDefinitionError
from mlpipe.web.api.dags import dags_page
from mlpipe.web.pages.common import Op, Viewer, page_errors, render, web
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
    found = dags_page(ctx, limit=PAGE_SIZE, offset=offset, tags=[tag] if tag else None,
                      pattern=q)
    dags = found["dags"]
    last = ctx.store.latest_runs([d["dag_id"] for d in dags])
    errors = dict(ctx.dags.bag().import_errors) or ctx.store.import_errors()
    return render(request, "pages/dags.html", user, rows=dag_rows(dags, last),
                  page=Page(offset, PAGE_SIZE, found["total_entries"]), tag=tag, q=q,
                  import_errors=sorted(errors.items()))


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
