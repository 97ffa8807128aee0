"""Running one try of one task instance: claim it, render, execute, record the outcome.

``run_task_instance`` is what ``mlpipe tasks run`` does, in this process or in a child of
an executor: everything goes through the metadata store, so any process can run any task
instance and a task instance can only be claimed (queued -> running) once.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import socket
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlpipe.connections.masking import redact
from mlpipe.core.artifact import artifact_prefix
from mlpipe.core.dag import DAG
from mlpipe.core.ids import validate_run_id
from mlpipe.core.mapping import MappedOperator, mapped_length, values_at
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.core.params import resolve_params
from mlpipe.core.retries import retry_delay_for
from mlpipe.core.serde import deserialize
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.core.templating import environment_for, holds_template, render_value
from mlpipe.core.xcom_arg import RETURN_VALUE, DagParam, MappedArgument, XComArg
from mlpipe.errors import InvalidTaskIdError, TaskError, TaskSkipped, TaskTimeoutError, XComError
from mlpipe.runtime import lineage
from mlpipe.runtime.context import build_context
from mlpipe.runtime.heartbeats import HEARTBEATS
from mlpipe.runtime.log_capture import LogFile, capture_task_output, log_task_line
from mlpipe.runtime.models import SKIP_KEY, DagRun, TaskInstance
from mlpipe.runtime.timeout import time_limit
from mlpipe.store.entities import TIKey
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.tracking.config import TrackingConfig
from mlpipe.tracking.task_runs import TaskMlflowRun

log = logging.getLogger("mlpipe.task")
_HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class TryOutcome:
    """How a try ended; ``retry_in`` is set when the state is ``up_for_retry``."""

    state: S
    skip: Collection[str] = ()
    retry_in: timedelta | None = None
    exception: BaseException | None = None


def log_dir(logs_root: Path, key: TIKey) -> Path:
    """``<root>/dag_id=../run_id=../task_id=..[/map_index=N]`` (one ``attempt=N.log`` a try).

    Raises ``InvalidTaskIdError`` if the folder (symlinks resolved) is not inside the root.
    """
    folder = Path(log_folder(str(logs_root), key))
    root = Path(logs_root).resolve()
    if not folder.resolve().is_relative_to(root):
        raise InvalidTaskIdError("run_id", key.run_id,
                                 f"its log folder would be outside the logs root {str(root)!r}")
    return folder


def log_folder(logs_root: str, key: TIKey) -> str:
    """``log_dir`` as a string (built once per try: no ``Path`` objects on the hot path).

    Ids with a ``/`` (a run id stored before run ids were checked) are refused: every id is
    one path segment behind its ``name=`` prefix, so no id can lead out of the root.
    """
    if "/" in key.run_id or "/" in key.dag_id or "/" in key.task_id:
        validate_run_id(key.run_id)
        raise InvalidTaskIdError("dag_id/task_id", f"{key.dag_id}/{key.task_id}",
                                 "a path separator is not allowed in an id")
    path = (f"{logs_root}/dag_id={key.dag_id}/run_id={key.run_id}/task_id={key.task_id}")
    return f"{path}/map_index={key.map_index}" if key.map_index >= 0 else path


@dataclass(frozen=True, slots=True)
class Claim:
    """A try this process claimed (queued -> running), about to run."""

    key: TIKey
    try_number: int
    max_tries: int
    operator: str
    started: datetime
    log_path: str


def claim_try(store: MetadataStore, key: TIKey, logs_root: Path, *,
              conn: Any = None) -> Claim | None:
    """Claim the next try of ``key`` for this process (in ``conn``'s transaction if given)."""
    folder = log_folder(str(logs_root), key)
    started = datetime.now(UTC)
    claimed = store.claim(key, start_date=started, pid=os.getpid(), hostname=_HOSTNAME,
                          log_path=folder, conn=conn)
    if claimed is None:
        return None
    return Claim(key, *claimed, started, folder)


class ExpansionError(TaskError):
    """A mapped task's input is not a list."""


def resolve_expand_input(run: DagRun, owner: str, expand_input: dict[str, Any]
                         ) -> dict[str, list[Any]]:
    """The lists a mapped task or group maps over, with upstream outputs pulled."""
    resolved: dict[str, list[Any]] = {}
    for name, value in expand_input.items():
        if isinstance(value, XComArg):
            value = run.pull(value.operator.task_id, value.key, requester=None)
            if isinstance(value, dict):
                value = [[k, v] for k, v in value.items()]
            if not isinstance(value, list):
                raise ExpansionError(
                    f"cannot expand {owner}: argument {name!r} got {type(value).__name__} "
                    f"{value!r} from an upstream task; it must return a list or dict"
                )
        resolved[name] = list(value)
    return resolved


def expansion_length(resolved: dict[str, list[Any]]) -> int:
    return mapped_length([len(v) for v in resolved.values()])


def expansion_of(run: DagRun, owner: str, expand_input: dict[str, Any]
                 ) -> dict[str, list[Any]]:
    """``resolve_expand_input``, once per run (the driver's result reaches forked children)."""
    cached = run.expansions.get(owner)
    if cached is None:
        sources = frozenset(v.operator.task_id for v in expand_input.values()
                            if isinstance(v, XComArg))
        cached = run.expansions[owner] = (sources,
                                          resolve_expand_input(run, owner, expand_input))
    return cached[1]


def instance_values(run: DagRun, owner: str, expand_input: dict[str, Any], map_index: int
                    ) -> dict[str, Any]:
    """One instance's mapped values, its own copies of those pulled from upstream XComs.

    The resolved lists are kept on the run (``DagRun.expansions``): resolving them again
    for every instance read and decoded the whole upstream output each time, quadratic in
    the number of instances.
    """
    values = values_at(expansion_of(run, owner, expand_input), map_index)
    for name, value in expand_input.items():
        if isinstance(value, XComArg):  # decoded JSON: a task may change it in place
            values[name] = copy.deepcopy(values[name])
    return values


def instance_operator(run: DagRun, task: BaseOperator, map_index: int) -> BaseOperator:
    """A private copy of the task for one instance (mapped tasks get their values)."""
    if isinstance(task, MappedOperator):
        return task.unmap(instance_values(run, repr(task), task.expand_input, map_index))
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
            group = value.group
            return True, instance_values(run, f"task group {group.group_id!r}",
                                         group.expand_input or {}, ti.map_index)[value.name]
        if isinstance(value, DagParam):
            return True, context["params"].get(value.name, value.default)
        return False, None

    return resolve


def render_fields(op: BaseOperator, context: Context,
                  resolve: Callable[[Any], tuple[bool, Any]]) -> None:
    """Render every template field in place, logging the templates that rendered.

    Arguments that only took upstream values (XComs, DAG params) are not logged: Airflow
    logs neither, and with TaskFlow it would be a line for every task.
    """
    env = None
    for name in op.template_fields:
        value = getattr(op, name, None)
        if value is None:
            continue
        if env is None:
            env = environment_for(op.dag)
        rendered = render_value(value, context, env=env, template_ext=op.template_ext,
                                resolve=resolve, field=name)
        if rendered is not value and rendered != value \
                and holds_template(value, op.template_ext):
            log.info("Rendered %s: %s", name, _short(rendered))
        setattr(op, name, rendered)


def _short(value: Any, limit: int = 1000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def result_xcoms(run: DagRun, ti: TaskInstance, op: BaseOperator, result: Any
                 ) -> dict[str, str]:
    """Serialized XComs of a return value (one per key with ``multiple_outputs``)."""
    if not op.do_xcom_push or result is None:
        return {}
    out: dict[str, str] = {}
    if op.multiple_outputs:
        if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
            raise XComError(
                f"task {op.task_id!r} has multiple_outputs=True but returned "
                f"{type(result).__name__}; return a dict with string keys"
            )
        for key, value in result.items():
            out[key] = run.serialize_xcom(ti.task_id, ti.map_index, key, value)
    out[RETURN_VALUE] = run.serialize_xcom(ti.task_id, ti.map_index, RETURN_VALUE, result)
    return out


@contextlib.contextmanager
def _heartbeat(store: MetadataStore, key: TIKey, interval: float,
               on_lost: Callable[[], None] | None) -> Iterator[None]:
    """Mark the running instance alive every ``interval`` seconds (never when it is 0)."""
    if interval <= 0:  # nothing watches heartbeats
        yield
        return
    token = HEARTBEATS.add(store, key, interval, on_lost)
    try:
        yield
    finally:
        HEARTBEATS.remove(token)


def run_task_instance(
    store: MetadataStore,
    dag: DAG,
    key: TIKey,
    *,
    logs_root: Path,
    xcom_max_bytes: int = 48 * 1024,
    heartbeat_interval: float = 5.0,
    on_heartbeat_lost: Callable[[], None] | None = None,
    run: DagRun | None = None,
    tracking: TrackingConfig | None = None,
    artifact_root: str | None = None,
    on_finish: Callable[[TryOutcome, Any], object] | None = None,
    claim: Claim | None = None,
) -> TryOutcome | None:
    """Claim ``key`` (queued -> running) and run one try; None if it was not claimable.

    ``claim`` is a claim this process already made (an in-process executor claims the next
    try inside the previous try's final transaction). ``on_finish(outcome, conn)`` runs
    inside the transaction that records the outcome (the driver's hand-off, see
    ``MetadataStore.finish_try``).
    """
    if run is None:
        run_record = store.get_run(key.dag_id, key.run_id)
        params = resolve_params(dag.params, run_record.conf)
        run = DagRun.from_record(run_record, dag, store, params=params,
                                 xcom_max_bytes=xcom_max_bytes)
    if claim is None:
        claim = claim_try(store, key, logs_root)
        if claim is None:
            return None
    try_number, max_tries, operator = claim.try_number, claim.max_tries, claim.operator
    started, folder = claim.started, claim.log_path
    if try_number > 1:
        run.forget_xcoms(key.task_id, key.map_index)
    ti = TaskInstance(key.dag_id, key.task_id, key.run_id, key.map_index, S.RUNNING,
                      try_number, max_tries, operator, started, hostname=_HOSTNAME,
                      pid=os.getpid(), log_path=folder, run=run)
    _make_folder(folder)
    task = dag.get_task(key.task_id)
    with LogFile(f"{folder}/attempt={try_number}.log") as sink, \
            _heartbeat(store, key, heartbeat_interval, on_heartbeat_lost):
        mlflow_run = TaskMlflowRun(store, run, ti, tracking)
        with capture_task_output(sink):  # once per try: it re-levels every logger
            outcome, xcoms, context = _execute(run, ti, task, mlflow_run.lazy, artifact_root)
            mlflow_run.finish(outcome.state)
            _log_outcome(ti, outcome)
        # Outside the capture: a hand-off's driver logs belong to the run, not to this try.
        if _record_outcome(store, ti, outcome, xcoms, sink, on_finish):
            run.remember_xcoms(key.task_id, key.map_index, xcoms)
        if _callbacks_of(task, outcome):
            with capture_task_output(sink):
                _run_callbacks(task, outcome, context, ti)
    return outcome


def _make_folder(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` in one system call when the parent exists."""
    try:
        os.mkdir(folder)
    except FileExistsError:  # a later try of the same instance
        pass
    except FileNotFoundError:  # the run's first try: its folders are made here
        os.makedirs(folder, exist_ok=True)


def _execute(run: DagRun, ti: TaskInstance, task: BaseOperator, mlflow_run: Any,
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
            cached = hit["xcoms"]
            skip = set(deserialize(cached[SKIP_KEY])) if SKIP_KEY in cached else set()
            return TryOutcome(S.SUCCESS, skip=skip), cached, context
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
        skip = set(op.downstream_to_skip(result, context))
        if skip:
            xcoms[SKIP_KEY] = run.serialize_xcom(ti.task_id, ti.map_index, SKIP_KEY,
                                                 sorted(skip))
        outcome = TryOutcome(S.SUCCESS, skip=skip)
        if result is not None and getattr(op, "show_return_value_in_logs", True):
            log_task_line(log, "Done. Returned value was: %s", _short(result))
    except TaskSkipped as exc:
        log.info("Skipping task: %s", exc)
        outcome = TryOutcome(S.SKIPPED)
    except (Exception, SystemExit) as exc:  # the task's own failure: recorded, not raised
        if isinstance(exc, TaskTimeoutError):
            stop_child_processes()
        outcome = _failure(ti, task, exc)
    return outcome, xcoms, context


def _verifier() -> lineage.Verifier:
    """Checks recorded outputs through their stores (S3 via the aws_default connection)."""
    options: dict[str, Any] | None = None
    try:
        from mlpipe.connections import get_connection

        conn = get_connection("aws_default")
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else dict(conn.extra or {})
        options = {"endpoint_url": extra.get("endpoint_url"),
                   "region_name": extra.get("region_name"),
                   "aws_access_key_id": conn.login, "aws_secret_access_key": conn.password}
    except Exception:  # no such connection: the default credential chain applies
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
    if ti.try_number <= ti.max_tries:
        delay = retry_delay_for(ti.try_number, retry_delay=task.retry_delay,
                                exponential_backoff=task.retry_exponential_backoff,
                                max_retry_delay=task.max_retry_delay)
        return TryOutcome(S.UP_FOR_RETRY, retry_in=delay, exception=exc)
    return TryOutcome(S.FAILED, exception=exc)


def _log_outcome(ti: TaskInstance, outcome: TryOutcome) -> None:
    ended = datetime.now(UTC)
    ti.state, ti.end_date = outcome.state, ended
    ti.duration = ended - (ti.start_date or ended)
    if outcome.state is S.UP_FOR_RETRY:
        log.info("Marking task as UP_FOR_RETRY; try %d of %d failed, next try in %s",
                 ti.try_number, ti.max_tries + 1, outcome.retry_in)
    else:
        log_task_line(log, "Marking task as %s", outcome.state.value.upper())


def _record_outcome(store: MetadataStore, ti: TaskInstance, outcome: TryOutcome,
                    xcoms: dict[str, str], sink: Any,
                    on_finish: Callable[[TryOutcome, Any], object] | None) -> bool:
    """The try's state and XComs (and the driver's hand-off) in one transaction."""
    ended = ti.end_date or datetime.now(UTC)
    next_retry = ended + outcome.retry_in if outcome.retry_in is not None else None
    then = None if on_finish is None else functools.partial(on_finish, outcome)
    recorded = store.finish_try(ti.key, to_state=outcome.state.value, xcoms=xcoms, then=then,
                                end_date=ended,
                                duration=ti.duration.total_seconds() if ti.duration else 0.0,
                                next_retry_at=next_retry, error=ti.error)
    if not recorded:
        sink.write(f"task instance {ti.key} changed state while running; outcome "
                   f"{outcome.state.value} not recorded\n")
    return recorded


def _callbacks_of(task: BaseOperator, outcome: TryOutcome) -> Any:
    if outcome.state is S.SUCCESS:
        return task.on_success_callback
    if outcome.state is S.FAILED:
        return task.on_failure_callback
    if outcome.state is S.UP_FOR_RETRY:
        return task.on_retry_callback
    return None


def _run_callbacks(task: BaseOperator, outcome: TryOutcome, context: Context,
                   ti: TaskInstance) -> None:
    callbacks = _callbacks_of(task, outcome)
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
