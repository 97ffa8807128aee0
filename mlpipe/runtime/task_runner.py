"""Running one try of one task instance: render, execute, push XCom, decide the state."""

from __future__ import annotations

import copy
import logging
import socket
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe.core.mapping import MappedOperator, values_at
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.core.retries import retry_delay_for
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.core.templating import environment_for, render_value
from mlpipe.core.xcom_arg import RETURN_VALUE, DagParam, MappedArgument, XComArg
from mlpipe.errors import TaskError, TaskSkipped, TaskTimeoutError, XComError
from mlpipe.runtime.context import build_context
from mlpipe.runtime.log_capture import capture_task_output
from mlpipe.runtime.models import DagRun, TaskInstance
from mlpipe.runtime.timeout import time_limit

log = logging.getLogger("mlpipe.task")
_HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class TryOutcome:
    """How a try ended; ``retry_in`` is set when the state is ``up_for_retry``."""

    state: S
    skip: Collection[str] = ()
    retry_in: timedelta | None = None
    exception: BaseException | None = None


def instance_operator(run: DagRun, task: BaseOperator, map_index: int) -> BaseOperator:
    """A private copy of the task for one instance (mapped tasks get their values)."""
    if isinstance(task, MappedOperator):
        source = run.expansions.get(task.task_id)
        if source is None:  # a task inside a mapped group: not mapped itself
            raise TaskError(f"mapped task {task.task_id!r} was not expanded")
        return task.unmap(values_at(source, map_index))
    return copy.copy(task)


def make_resolver(run: DagRun, ti: TaskInstance, context: Context
                  ) -> Callable[[Any], tuple[bool, Any]]:
    """Replaces XComArgs, mapped-group arguments and DAG params with their run-time values."""

    def resolve(value: Any) -> tuple[bool, Any]:
        if isinstance(value, XComArg):
            # As in Airflow: a missing return value resolves to None, a missing key fails.
            strict = value.key != RETURN_VALUE
            return True, run.pull(value.operator.task_id, value.key, requester=ti,
                                  strict=strict)
        if isinstance(value, MappedArgument):
            group_input = run.expansions[value.group.group_id or ""]
            return True, values_at(group_input, ti.map_index)[value.name]
        if isinstance(value, DagParam):
            return True, context["params"].get(value.name, value.default)
        return False, None

    return resolve


def render_fields(op: BaseOperator, context: Context,
                  resolve: Callable[[Any], tuple[bool, Any]]) -> None:
    """Render every template field in place, logging the ones that changed."""
    env = None
    for name in op.template_fields:
        value = getattr(op, name, None)
        if value is None:
            continue
        if env is None:
            env = environment_for(op.dag)
        rendered = render_value(value, context, env=env, template_ext=op.template_ext,
                                resolve=resolve, field=name)
        if rendered is not value and rendered != value:
            log.info("Rendered %s: %s", name, _short(rendered))
        setattr(op, name, rendered)


def _short(value: Any, limit: int = 1000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def push_result(run: DagRun, ti: TaskInstance, op: BaseOperator, result: Any) -> None:
    if not op.do_xcom_push or result is None:
        return
    if op.multiple_outputs:
        if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
            raise XComError(
                f"task {op.task_id!r} has multiple_outputs=True but returned "
                f"{type(result).__name__}; return a dict with string keys"
            )
        for key, value in result.items():
            ti.xcom_push(key, value)
    ti.xcom_push(RETURN_VALUE, result)


def run_try(run: DagRun, ti: TaskInstance, task: BaseOperator) -> TryOutcome:
    """Run the next try of ``ti`` in this thread; never raises for a task's own failure."""
    ti.try_number += 1
    ti.state = S.RUNNING
    ti.start_date = datetime.now(UTC)
    ti.end_date = None
    ti.hostname = _HOSTNAME
    ti.error = None
    sink: list[str] = []
    context: Context = {}
    with capture_task_output(sink):
        index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
        log.info("Starting try %d of %d: %s%s", ti.try_number, task.retries + 1,
                 task.task_id, index)
        try:
            op = instance_operator(run, task, ti.map_index)
            context = build_context(run, ti, op)
            render_fields(op, context, make_resolver(run, ti, context))
            limit = op.execution_timeout.total_seconds() if op.execution_timeout else None
            with time_limit(limit, f"task {task.task_id!r} timed out after "
                                   f"{op.execution_timeout}"):
                result = op.execute(context)
            push_result(run, ti, op, result)
            skip = op.downstream_to_skip(result, context)
            outcome = TryOutcome(S.SUCCESS, skip=skip)
            if result is not None and getattr(op, "show_return_value_in_logs", True):
                log.info("Done. Returned value was: %s", _short(result))
        except TaskSkipped as exc:
            log.info("Skipping task: %s", exc)
            outcome = TryOutcome(S.SKIPPED)
        except (Exception, SystemExit) as exc:  # the task's own failure: recorded, not raised
            outcome = _failure(ti, task, exc)
        _finish_try(ti, outcome)
        _run_callbacks(task, outcome, context, ti)
    ti.log_parts.extend(sink)
    ti.logs_by_try[ti.try_number] = "".join(sink)
    return outcome


def _failure(ti: TaskInstance, task: BaseOperator, exc: BaseException) -> TryOutcome:
    ti.error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TaskTimeoutError | TaskError):
        log.error("Task failed: %s", ti.error)
    else:
        log.error("Task failed with exception:\n%s", "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
    if ti.try_number <= task.retries:
        delay = retry_delay_for(ti.try_number, retry_delay=task.retry_delay,
                                exponential_backoff=task.retry_exponential_backoff,
                                max_retry_delay=task.max_retry_delay)
        return TryOutcome(S.UP_FOR_RETRY, retry_in=delay, exception=exc)
    return TryOutcome(S.FAILED, exception=exc)


def _finish_try(ti: TaskInstance, outcome: TryOutcome) -> None:
    ti.state = outcome.state
    ti.end_date = datetime.now(UTC)
    ti.duration = ti.end_date - (ti.start_date or ti.end_date)
    if outcome.state is S.UP_FOR_RETRY:
        log.info("Marking task as UP_FOR_RETRY; try %d of %d failed, next try in %s",
                 ti.try_number, ti.max_tries + 1, outcome.retry_in)
    else:
        log.info("Marking task as %s", outcome.state.value.upper())


def _run_callbacks(task: BaseOperator, outcome: TryOutcome, context: Context,
                   ti: TaskInstance) -> None:
    callbacks = {
        S.SUCCESS: task.on_success_callback,
        S.FAILED: task.on_failure_callback,
        S.UP_FOR_RETRY: task.on_retry_callback,
    }.get(outcome.state)
    if not callbacks:
        return
    if outcome.exception is not None:
        context["exception"] = outcome.exception
    context.setdefault("ti", ti)
    for callback in callbacks if isinstance(callbacks, Sequence) else [callbacks]:
        try:
            callback(context)
        except Exception:  # a broken callback is logged, it does not change the state
            log.exception("callback %r failed", getattr(callback, "__name__", callback))
