"""Steering runs by hand: clear task instances, mark a run or a task instance.

What Airflow's "clear", "mark success" and "mark failed" do, on the metadata DB. A running
try whose row is changed here notices at its next heartbeat (the row is no longer running
for it) and stops itself; ``wait_stopped`` waits for that.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import psutil

from mlpipe.core.dag import DAG
from mlpipe.core.states import FINISHED_STATES, DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import DagDefinitionError
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

#: what ``mark success`` / ``mark failed`` set unfinished instances to (Airflow 2): a
#: failed run's instances that never started are skipped, running ones failed
_MARK = {S.SUCCESS: {S.RUNNING: S.SUCCESS, "other": S.SUCCESS},
         S.FAILED: {S.RUNNING: S.FAILED, "other": S.SKIPPED}}
_UNFINISHED = (S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE)


def matching(store: MetadataStore, dag: DAG, *, run_id: str | None, task_regex: str | None,
             downstream: bool, only_failed: bool = False,
             run_ids: Iterable[str] | None = None) -> list[TaskInstanceRecord]:
    """The task instances a clear with these options would look at (any state); ``run_ids``
    limits them to those runs when no single ``run_id`` is given."""
    try:
        pattern = re.compile(task_regex) if task_regex else None
    except re.error as exc:
        raise DagDefinitionError(
            f"--task {task_regex!r} is not a valid regular expression: {exc}") from None
    selected = [t for t in dag.task_dict.values()
                if pattern is None or pattern.search(t.task_id)]
    if not selected:
        raise DagDefinitionError(
            f"no task of DAG {dag.dag_id!r} matches {task_regex!r}; tasks: "
            f"{sorted(dag.task_dict)}")
    task_ids = {t.task_id for t in selected}
    if downstream:
        for t in selected:
            task_ids.update(d.task_id for d in t.get_descendants())
    if run_id:
        runs = [store.get_run(dag.dag_id, run_id).run_id]
    elif run_ids is not None:
        runs = list(run_ids)
    else:
        runs = [r.run_id for r in store.list_runs(dag.dag_id)]
    found: list[TaskInstanceRecord] = []
    for rid in runs:
        records = store.list_tis(dag.dag_id, rid, task_ids=task_ids)
        if only_failed:
            bad = {r.task_id for r in records if r.state in (S.FAILED, S.UPSTREAM_FAILED)}
            records = [r for r in records if r.task_id in bad]
        found.extend(records)
    return found


def clearable(record: TaskInstanceRecord, *, stop_running: bool) -> bool:
    """Whether ``clear`` resets this instance (finished or waiting for a retry; running and
    queued ones only when told to stop them)."""
    return (S(record.state) in FINISHED_STATES
            or record.state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE)
            or (stop_running and record.state in (S.RUNNING, S.QUEUED)))


def clear(store: MetadataStore, dag: DAG, *, run_id: str | None = None,
          task_regex: str | None = None, downstream: bool = True, only_failed: bool = False,
          stop_running: bool = False, run_ids: Iterable[str] | None = None) -> list[TIKey]:
    """Reset the matching instances so they run again; see ``Engine.clear``."""
    records = matching(store, dag, run_id=run_id, task_regex=task_regex,
                       downstream=downstream, only_failed=only_failed, run_ids=run_ids)
    mapped = {r.task_id for r in records if dag.get_task(r.task_id).is_mapped}
    cleared: list[TIKey] = []
    for rid in dict.fromkeys(r.run_id for r in records):
        keys = store.clear_tis(
            [(r.key, r.try_number + dag.get_task(r.task_id).retries) for r in records
             if r.run_id == rid and clearable(r, stop_running=stop_running)],
            mapped=mapped, stop_running=stop_running)
        if keys:
            store.set_run_state(dag.dag_id, rid, DagRunState.QUEUED, end_date=None)
        cleared.extend(keys)
    return cleared


def mark_run_changes(store: MetadataStore, dag: DAG, run_id: str, state: str
                     ) -> list[tuple[TaskInstanceRecord, str]]:
    """What marking the run ``state`` would do: each unfinished instance and its new state
    (the web UI lists them before asking to confirm)."""
    if state not in _MARK:
        known = sorted(s.value for s in _MARK)
        raise DagDefinitionError(f"a run can be marked {known}, not {state!r}")
    store.get_run(dag.dag_id, run_id)  # RunNotFoundError names the known runs
    return [(record, _MARK[state][S.RUNNING if record.state == S.RUNNING else "other"])
            for record in store.list_tis(dag.dag_id, run_id) if record.state in _UNFINISHED]


def mark_run(store: MetadataStore, dag: DAG, run_id: str, state: str) -> list[TIKey]:
    """Set the run to ``success`` or ``failed`` and its unfinished instances with it."""
    now = datetime.now(UTC)
    changed: list[TIKey] = []
    for record, target in mark_run_changes(store, dag, run_id, state):
        if store.transition(record.key, [record.state], target, end_date=now):
            changed.append(record.key)
    store.set_run_state(dag.dag_id, run_id, state, end_date=now)
    return changed


def set_task_state(store: MetadataStore, dag: DAG, key: TIKey, state: str) -> str:
    """Set one instance's state; its previous state. A finished run is reopened (queued)
    when the change lets its downstream go on."""
    if state not in (S.SUCCESS, S.FAILED, S.SKIPPED):
        raise DagDefinitionError(f"a task instance can be set to ['failed', 'skipped', "
                                 f"'success'], not {state!r}")
    dag.get_task(key.task_id)  # TaskNotFoundError names the known tasks
    record = store.get_ti(key)
    if record is None:
        raise DagDefinitionError(f"run {key.run_id!r} of DAG {key.dag_id!r} has no task "
                                 f"instance {key.task_id!r} (map_index {key.map_index})")
    if record.state != state:
        store.transition(key, [record.state], state, end_date=datetime.now(UTC))
    run = store.get_run(key.dag_id, key.run_id)
    if run.state in (DagRunState.SUCCESS, DagRunState.FAILED) and state != DagRunState.FAILED:
        downstream = {t.task_id for t in dag.get_task(key.task_id).get_descendants()}
        blocked = [r for r in store.list_tis(key.dag_id, key.run_id, task_ids=downstream)
                   if r.state == S.UPSTREAM_FAILED]
        store.clear_tis([(r.key, r.max_tries) for r in blocked])
        store.set_run_state(key.dag_id, key.run_id, DagRunState.QUEUED, end_date=None)
    return record.state


def wait_stopped(store: MetadataStore, records: list[TaskInstanceRecord], *,
                 timeout: float) -> list[TIKey]:
    """Wait until the processes of these (formerly running) tries ended; those still alive."""
    deadline = time.monotonic() + timeout
    here = socket.gethostname()  # a pid only means something on its own host
    waiting = [r for r in records if r.pid and r.hostname in (None, "", here)]
    while waiting and time.monotonic() < deadline:
        waiting = [r for r in waiting if _alive(r.pid)]
        if waiting:
            time.sleep(0.1)
    return [r.key for r in waiting]


def _alive(pid: int | None) -> bool:
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
