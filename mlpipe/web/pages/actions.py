"""Clear, mark success and mark failed: a page listing what would change (a dry run), then
the change itself when the form on it is posted.

The listing and the change go through the same functions of ``scheduler.run_control``
the command line uses (``matching`` + ``clearable``, ``mark_run_changes``,
``set_task_state``), so what the page lists is what the action does.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.core.dag import DAG
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import DagDefinitionError
from mlpipe.scheduler import run_control
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.web.context import WebContext
from mlpipe.web.pages.common import Op, page_errors, render, web

_MARKS = ("success", "failed")
TaskId = Annotated[str | None, Query(max_length=250)]


def register(router: APIRouter) -> None:
    base = "/dags/{dag_id}/runs/{run_id}"
    router.add_api_route(f"{base}/clear", confirm_clear, methods=["GET"])
    router.add_api_route(f"{base}/clear", do_clear, methods=["POST"])
    router.add_api_route(f"{base}/mark/{{state}}", confirm_mark, methods=["GET"])
    router.add_api_route(f"{base}/mark/{{state}}", do_mark, methods=["POST"])


def _clear_plan(ctx: WebContext, dag: DAG, run_id: str, task_id: str | None,
                downstream: bool, only_failed: bool) -> list[TaskInstanceRecord]:
    ctx.store.get_run(dag.dag_id, run_id)  # RunNotFoundError names the runs
    if task_id is not None:
        dag.get_task(task_id)  # TaskNotFoundError names the tasks
    regex = f"^{re.escape(task_id)}$" if task_id else None
    found = run_control.matching(ctx.store, dag, run_id=run_id, task_regex=regex,
                                 downstream=downstream, only_failed=only_failed)
    return [r for r in found if run_control.clearable(r, stop_running=True)]


@page_errors
def confirm_clear(request: Request, user: Op, dag_id: str, run_id: str,
                  task_id: TaskId = None, downstream: bool = True,
                  only_failed: bool = False) -> Response:
    """The task instances a clear would reset (running ones are stopped first)."""
    ctx = web(request)
    dag = ctx.dag(dag_id)
    plan = _clear_plan(ctx, dag, run_id, task_id, downstream, only_failed)
    return render(request, "pages/confirm.html", user, dag=dag, run_id=run_id,
                  action="clear", title="Clear task instances", task_id=task_id,
                  changes=[(r, "none") for r in plan], downstream=downstream,
                  only_failed=only_failed,
                  running=[r for r in plan if r.state in (S.RUNNING, S.QUEUED)])


@page_errors
def do_clear(request: Request, user: Op, dag_id: str, run_id: str,
             task_id: Annotated[str, Form(max_length=250)] = "",
             downstream: Annotated[bool, Form()] = False,
             only_failed: Annotated[bool, Form()] = False) -> Response:
    ctx = web(request)
    dag = ctx.dag(dag_id)
    plan = _clear_plan(ctx, dag, run_id, task_id or None, downstream, only_failed)
    regex = f"^{re.escape(task_id)}$" if task_id else None
    cleared = ctx.engine.clear(dag, run_id=run_id, task_regex=regex, downstream=downstream,
                               only_failed=only_failed,
                               stop_running=any(r.state in (S.RUNNING, S.QUEUED)
                                                for r in plan))
    return RedirectResponse(f"/dags/{dag_id}/runs/{run_id}?cleared={len(cleared)}",
                            status_code=303)


def _mark_plan(ctx: WebContext, dag: DAG, run_id: str, state: str, task_id: str | None,
               map_index: int) -> list[tuple[TaskInstanceRecord, str]]:
    if state not in _MARKS:
        raise DagDefinitionError(f"can mark {list(_MARKS)}, not {state!r}")
    if task_id is None:
        return run_control.mark_run_changes(ctx.store, dag, run_id, state)
    dag.get_task(task_id)
    ctx.store.get_run(dag.dag_id, run_id)
    record = ctx.store.get_ti(TIKey(dag.dag_id, run_id, task_id, map_index))
    if record is None:
        raise DagDefinitionError(f"run {run_id!r} has no task instance {task_id!r} "
                                 f"(map_index {map_index})")
    return [(record, state)] if record.state != state else []


@page_errors
def confirm_mark(request: Request, user: Op, dag_id: str, run_id: str, state: str,
                 task_id: TaskId = None,
                 map_index: Annotated[int, Query(ge=-1, le=1_000_000)] = -1) -> Response:
    """The task instances marking the run (or one instance) ``state`` would change."""
    ctx = web(request)
    dag = ctx.dag(dag_id)
    plan = _mark_plan(ctx, dag, run_id, state, task_id, map_index)
    what = f"task {task_id}" if task_id else f"run {run_id}"
    return render(request, "pages/confirm.html", user, dag=dag, run_id=run_id,
                  action=f"mark/{state}", title=f"Mark {what} {state}", task_id=task_id,
                  map_index=map_index, changes=plan,
                  running=[r for r, _ in plan if r.state == S.RUNNING])


@page_errors
def do_mark(request: Request, user: Op, dag_id: str, run_id: str, state: str,
            task_id: Annotated[str, Form(max_length=250)] = "",
            map_index: Annotated[int, Form(ge=-1, le=1_000_000)] = -1) -> Response:
    ctx = web(request)
    dag = ctx.dag(dag_id)
    _mark_plan(ctx, dag, run_id, state, task_id or None, map_index)  # checks the arguments
    if task_id:
        run_control.set_task_state(ctx.store, dag, TIKey(dag_id, run_id, task_id, map_index),
                                   state)
    else:
        run_control.mark_run(ctx.store, dag, run_id, state)
    return RedirectResponse(f"/dags/{dag_id}/runs/{run_id}?marked={state}", status_code=303)
