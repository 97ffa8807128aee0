"""The body of one try: build the context, render, execute, and judge the outcome.

``TryRunner`` (``runtime/try_runner.py``) wraps this with the claim, the log file, the
heartbeat, MLflow and the recording of the result; here nothing touches the metadata store
except through the run (XCom pulls, lineage).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe.core.artifact import artifact_prefix
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.core.retries import retry_delay_for
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import (
    SensorTimeoutError,
    TaskError,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeoutError,
)
from mlpipe.masking import redact
from mlpipe.runtime import lineage
from mlpipe.runtime.callbacks import invoke_callbacks
from mlpipe.runtime.context import build_context
from mlpipe.runtime.expansion import instance_operator
from mlpipe.runtime.log_capture import log_task_line
from mlpipe.runtime.models import DagRun, TaskInstance
from mlpipe.runtime.rendering import make_resolver, render_fields, result_xcoms, short_repr
from mlpipe.runtime.timeout import time_limit

__all__ = ["TryOutcome", "callbacks_of", "execute_try", "log_outcome", "run_callbacks",
           "stop_child_processes"]

log = logging.getLogger("mlpipe.task")


@dataclass(frozen=True, slots=True)
class TryOutcome:
    """How a try ended; ``retry_in`` is set when the state is ``up_for_retry``,
    ``reschedule_at`` when it is ``up_for_reschedule`` (a sensor's next poke)."""

    state: S
    skip: Collection[str] = ()
    retry_in: timedelta | None = None
    exception: BaseException | None = None
    reschedule_at: datetime | None = None


def execute_try(run: DagRun, ti: TaskInstance, task: BaseOperator, mlflow_run: Any,
             artifact_root: str | None) -> tuple[TryOutcome, dict[str, str], Context]:
    xcoms: dict[str, str] = {}
    context: Context = {}
    index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
    log_task_line(log, "Starting try %d of %d: %s%s (%s)", ti.try_number, ti.max_tries + 1,
                  task.task_id, index, run.run_id)
    try:
        op = instance_operator(run, task, ti.map_index)
        context = build_context(run, ti, op)
        context["mlflow_run"] = mlflow_run
        if artifact_root is not None:
            context["artifact_prefix"] = artifact_prefix(
                artifact_root, run.dag_id, run.run_id, ti.task_id, map_index=ti.map_index)
        render_fields(op, context, make_resolver(run, ti, context))
        arguments = lineage.rendered_arguments(op)
        inputs = lineage.find_artifacts(arguments)
        key = lineage.cache_key(op, arguments, inputs) if op.cache else None
        hit = lineage.lookup(run.store, key, _verifier()) if key else None
        if hit is not None:
            log.info("Cache hit: reusing %s, recorded by %s (key %s); not running the task",
                     [a.uri for a in hit["artifacts"]], hit["producer"], key[:12])
            return TryOutcome(S.SUCCESS), hit["xcoms"], context
        limit = op.execution_timeout.total_seconds() if op.execution_timeout else None
        with time_limit(limit, f"task {task.task_id!r} timed out after "
                               f"{op.execution_timeout}"):
            try:
                result = op.execute(context)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise
                result = None  # sys.exit(0) ends the task normally

        xcoms = result_xcoms(run, ti, op, lineage.without_sources(result))
        lineage.record(run.store, ti.key, ti.try_number, op, lineage.find_artifacts(result),
                       inputs, cache=key, xcoms=xcoms)
        outcome = TryOutcome(S.SUCCESS, skip=set(op.downstream_to_skip(result, context)))
        if result is not None and getattr(op, "show_return_value_in_logs", True):
            log_task_line(log, "Done. Returned value was: %s", short_repr(result))
    except TaskSkipped as exc:
        log.info("Skipping task: %s", exc)
        outcome = TryOutcome(S.SKIPPED)
    except TaskRescheduled as exc:  # a sensor frees its slot until its next poke
        outcome = TryOutcome(S.UP_FOR_RESCHEDULE, reschedule_at=exc.reschedule_date)
    except (Exception, SystemExit) as exc:  # the task's own failure: recorded, not raised
        if isinstance(exc, TaskTimeoutError):
            stop_child_processes()
        outcome = _failure(ti, task, exc)
    return outcome, xcoms, context


def _verifier() -> lineage.Verifier:
    """Checks recorded outputs through their stores (S3 via the aws_default connection)."""
    from mlpipe.hooks.s3 import credentials_for

    try:
        options: dict[str, Any] | None = {"credentials": credentials_for("aws_default")}
    except Exception:  # no such (or no readable) connection: the default credential chain
        options = None
    return lineage.verify_with_stores(options)


def stop_child_processes() -> None:
    """Kill every process this one started (a timed-out task's whole tree)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(children, timeout=5)


def _failure(ti: TaskInstance, task: BaseOperator, exc: BaseException) -> TryOutcome:
    ti.error = redact(f"{type(exc).__name__}: {exc}")  # stored and shown: never a secret
    if isinstance(exc, TaskTimeoutError | TaskError):
        log.error("Task failed: %s", ti.error)
    else:
        log.error("Task failed with exception:\n%s", "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
    if ti.try_number <= ti.max_tries and not isinstance(exc, SensorTimeoutError):
        delay = retry_delay_for(ti.try_number, retry_delay=task.retry_delay,
                                exponential_backoff=task.retry_exponential_backoff,
                                max_retry_delay=task.max_retry_delay)
        return TryOutcome(S.UP_FOR_RETRY, retry_in=delay, exception=exc)
    return TryOutcome(S.FAILED, exception=exc)


def log_outcome(ti: TaskInstance, outcome: TryOutcome) -> None:
    ended = datetime.now(UTC)
    ti.state, ti.end_date = outcome.state, ended
    ti.duration = ended - (ti.start_date or ended)
    if outcome.state is S.UP_FOR_RETRY:
        log.info("Marking task as UP_FOR_RETRY; try %d of %d failed, next try in %s",
                 ti.try_number, ti.max_tries + 1, outcome.retry_in)
    elif outcome.state is S.UP_FOR_RESCHEDULE and outcome.reschedule_at is not None:
        log.info("Marking task as UP_FOR_RESCHEDULE; next poke at %s",
                 outcome.reschedule_at.isoformat())
    else:
        log_task_line(log, "Marking task as %s", outcome.state.value.upper())


def callbacks_of(task: BaseOperator, outcome: TryOutcome) -> Any:
    if outcome.state is S.SUCCESS:
        return task.on_success_callback
    if outcome.state is S.FAILED:
        return task.on_failure_callback
    if outcome.state is S.UP_FOR_RETRY:
        return task.on_retry_callback
    return None


def run_callbacks(task: BaseOperator, outcome: TryOutcome, context: Context,
                   ti: TaskInstance) -> None:
    callbacks = callbacks_of(task, outcome)
    if not callbacks:
        return
    if outcome.exception is not None:
        context["exception"] = outcome.exception
    context.setdefault("ti", ti)
    invoke_callbacks(callbacks, context, what="callback", logger=log)
