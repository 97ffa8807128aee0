"""The trigger form, built from the DAG's ``Param``s; errors shown beside the fields."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.core.dag import DAG
from mlpipe.scheduler.runs import record_dags
from mlpipe.web.pages.common import Op, page_errors, render, web
from mlpipe.web.views.params_form import form_fields, parse_form

#: form fields that are not params
_OWN_FIELDS = {"csrf_token"}


def register(router: APIRouter) -> None:
    router.add_api_route("/dags/{dag_id}/trigger", trigger_form, methods=["GET"])
    router.add_api_route("/dags/{dag_id}/trigger", trigger, methods=["POST"])


@page_errors
def trigger_form(request: Request, user: Op, dag_id: str) -> Response:
    dag = web(request).dag(dag_id)
    return _form(request, user, dag)


def _form(request: Request, user: Op, dag: DAG, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return render(request, "pages/trigger.html", user, status, dag=dag,
                  fields=form_fields(dag.params, values, errors), errors=errors or {})


async def trigger(request: Request, user: Op, dag_id: str) -> Response:
    """Check the fields (each with the param's own check), create the run, go to the grid."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k not in _OWN_FIELDS}
    return await run_in_threadpool(_trigger, request=request, user=user, dag_id=dag_id,
                                   values=values)


@page_errors
def _trigger(request: Request, user: Op, dag_id: str, values: dict[str, str]) -> Response:
    ctx = web(request)
    dag = ctx.dag(dag_id)
    conf, errors = parse_form(dag.params, values)
    if errors:
        return _form(request, user, dag, values, errors, status=400)
    record = ctx.engine.trigger(dag, conf=conf)
    record_dags(ctx.store, [dag], paused_by_default=ctx.settings.dags_paused_at_creation)
    return RedirectResponse(f"/dags/{dag_id}/grid?triggered={record.run_id}", status_code=303)
