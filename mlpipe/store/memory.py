"""``MemoryStore``: the run-driving store protocols on plain dicts, for ``dag.test()``.

A ``dag.test()`` run lives and dies in one process; a SQLite file made it pay for importing
SQLAlchemy and creating the schema (about half a second of a fresh process) for rows nobody
else reads. This store keeps the same records (``store/entities.py``) in dicts and gives the
same answers as ``MetadataStore`` for everything ``DriverStore`` and ``TryStore`` promise:
compare-and-set transitions with a journal (``transitions``), claims that clear the XComs
of earlier tries, pools and ``max_active_tasks`` at queueing, artifacts and lineage, and
transactions that undo their writes when the block raises. One lock makes it safe for the
heartbeat thread of a try. It imports nothing heavy: no SQLAlchemy, no Alembic.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe.core.states import DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import RunExistsError, RunNotFoundError, StoreError
from mlpipe.store.entities import DagRunRecord, StateTransition, TaskInstanceRecord, TIKey

__all__ = ["MemoryStore"]

_ALL_STATES = frozenset(s.value for s in S)
_ACTIVE = frozenset({S.QUEUED.value, S.RUNNING.value})
_RunKey = tuple[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: Any) -> Any:
    """Datetimes as the SQL store returns them: aware, in UTC (naive ones taken as UTC)."""
    if not isinstance(value, datetime):
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _utc(value) for name, value in values.items()}


@dataclasses.dataclass(slots=True)
class _Ti:
    """A task instance row: the record's fields and the pool it queues in."""

    record: TaskInstanceRecord
    pool: str | None


class _Transaction:
    """The undo log of one write transaction (``None`` outside one: writes are final)."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], object]] = []


class MemoryStore:
    """The metadata of runs in this process's memory (``DriverStore`` for ``dag.test()``)."""

    #: queueings may share one transaction, as on SQLite
    batches_writes = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[_RunKey, DagRunRecord] = {}
        self._mlflow: dict[_RunKey, str] = {}
        self._tis: dict[_RunKey, dict[tuple[str, int], _Ti]] = {}
        #: XComs by (dag_id, run_id, task_id), then map index, then key: a mapped task's
        #: values are read together without scanning every XCom of the run
        self._xcoms: dict[tuple[str, str, str], dict[int, dict[str, str]]] = {}
        self._journal: list[StateTransition] = []
        self._artifacts: list[dict[str, Any]] = []
        self._inputs: list[dict[str, Any]] = []
        self._pools: dict[str, int] = {}
        self._active_by_dag: Counter[str] = Counter()
        self._active_by_pool: Counter[str] = Counter()
        self._tx: _Transaction | None = None
        #: SLA misses recorded: (dag_id, run_id, task_id or "", kind)
        self._sla_misses: set[tuple[str, str, str, str]] = set()
        #: dataset events of outlets: (uri, extra, source task instance)
        self.dataset_events: list[tuple[str, dict[str, Any], Any]] = []

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        """A write transaction: every write in the block is undone if the block raises."""
        with self._lock:
            if self._tx is not None:  # nested: part of the caller's transaction
                yield self._tx
                return
            self._tx = tx = _Transaction()
            try:
                yield tx
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise
            finally:
                self._tx = None

    def try_transaction(self, key: TIKey) -> Any:
        """The transaction that records the end of ``key``'s try (``finish_try``)."""
        return self.transaction()

    def _undo(self, action: Callable[[], object]) -> None:
        if self._tx is not None:
            self._tx.undo.append(action)

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, record: DagRunRecord,
                   task_instances: Iterable[tuple[Any, ...]]) -> DagRunRecord:
        """Insert a run and its instances ``(task_id, map_index, operator, max_tries[, pool])``."""
        key = (record.dag_id, record.run_id)
        record = dataclasses.replace(record, **_utc_values(
            {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}))
        with self.transaction():
            if key in self._runs:
                raise RunExistsError(record.dag_id, record.run_id)
            self._runs[key] = record
            self._tis[key] = {}
            self._undo(lambda: self._forget_run(key))
            self.add_tis(record.dag_id, record.run_id, task_instances)
        return record

    def _forget_run(self, key: _RunKey) -> None:
        del self._runs[key], self._tis[key]

    def get_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        with self._lock:
            record = self._runs.get((dag_id, run_id))
            if record is None:  # oldest first, as the SQL store lists them
                runs = sorted((r.logical_date, n, r.run_id) for n, r in
                              enumerate(self._runs.values()) if r.dag_id == dag_id)
                raise RunNotFoundError(dag_id, run_id, [r for _, _, r in runs])
            return record

    def _replace_run(self, dag_id: str, run_id: str, **values: Any) -> None:
        old = self.get_run(dag_id, run_id)
        self._runs[(dag_id, run_id)] = dataclasses.replace(old, **_utc_values(values))
        self._undo(lambda: self._runs.__setitem__((dag_id, run_id), old))

    def set_run_state(self, dag_id: str, run_id: str, state: str, **values: Any) -> None:
        with self.transaction():
            if (dag_id, run_id) in self._runs:  # as an UPDATE of no row: nothing to do
                self._replace_run(dag_id, run_id, state=state, **values)

    def end_run(self, dag_id: str, run_id: str, state: str, end_date: datetime) -> None:
        with self.transaction():
            self._replace_run(dag_id, run_id, state=state, end_date=end_date)

    def active_run_count(self, dag_id: str) -> int:
        with self._lock:
            return sum(r.dag_id == dag_id and r.state in (DagRunState.QUEUED,
                                                          DagRunState.RUNNING)
                       for r in self._runs.values())

    def get_mlflow_run_id(self, dag_id: str, run_id: str) -> str | None:
        with self._lock:
            return self._mlflow.get((dag_id, run_id))

    def set_mlflow_run_id(self, dag_id: str, run_id: str, mlflow_run_id: str) -> str:
        with self._lock:
            self.get_run(dag_id, run_id)
            return self._mlflow.setdefault((dag_id, run_id), mlflow_run_id)

    # -- task instances ---------------------------------------------------------------------

    def _row(self, key: TIKey) -> _Ti | None:
        return self._tis.get((key.dag_id, key.run_id), {}).get((key.task_id, key.map_index))

    def get_ti(self, key: TIKey) -> TaskInstanceRecord | None:
        with self._lock:
            row = self._row(key)
            return row.record if row else None

    def list_tis(self, dag_id: str, run_id: str, *, task_ids: Iterable[str] | None = None,
                 states: Iterable[str] | None = None) -> list[TaskInstanceRecord]:
        wanted = None if task_ids is None else set(task_ids)
        in_states = None if states is None else set(states)
        with self._lock:
            rows = self._tis.get((dag_id, run_id), {})
            return [row.record for _, row in sorted(rows.items())
                    if (wanted is None or row.record.task_id in wanted)
                    and (in_states is None or row.record.state in in_states)]

    def ti_states(self, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
        with self._lock:
            return [(t, i, row.record.state)
                    for (t, i), row in self._tis.get((dag_id, run_id), {}).items()]

    def add_tis(self, dag_id: str, run_id: str, task_instances: Iterable[tuple[Any, ...]],
                *, drop: Iterable[tuple[str, int]] = ()) -> None:
        """Add instances (a mapped task's expansion), dropping placeholders in one go."""
        with self.transaction():
            rows = self._tis[(dag_id, run_id)]
            for ident in drop:
                if ident in rows:
                    self._set_row(rows, ident, None)
            for task_id, map_index, operator, max_tries, *pool in task_instances:
                ident = (task_id, map_index)
                if ident in rows:
                    raise RunExistsError(dag_id, f"{run_id} (task instance {task_id}"
                                                 f"[{map_index}] exists)")
                record = TaskInstanceRecord(
                    dag_id, run_id, task_id, map_index, S.NONE.value, 0, max_tries, operator,
                    None, None, None, None, None, None, None, None, None, None)
                self._set_row(rows, ident, _Ti(record, pool[0] if pool else None))

    def _set_row(self, rows: dict[tuple[str, int], _Ti], ident: tuple[str, int],
                 row: _Ti | None) -> None:
        old = self._put(rows, ident, row)
        self._undo(lambda: self._put(rows, ident, old))

    def _put(self, rows: dict[tuple[str, int], _Ti], ident: tuple[str, int],
             row: _Ti | None) -> _Ti | None:
        """Set (or, with None, delete) one row, keeping the active counts; the old row."""
        old = rows.pop(ident, None)
        if old is not None:
            self._count(old, -1)
        if row is not None:
            rows[ident] = row
            self._count(row, 1)
        return old

    def _count(self, row: _Ti, delta: int) -> None:
        """Queued and running instances by DAG and by pool (the queueing gates' counts)."""
        if row.record.state in _ACTIVE:
            self._active_by_dag[row.record.dag_id] += delta
            if row.pool is not None:
                self._active_by_pool[row.pool] += delta

    def _move(self, key: TIKey, row: _Ti, to_state: str, at: datetime, **values: Any) -> None:
        """Write the row's new state and values and journal the change."""
        old = row.record
        new = dataclasses.replace(old, state=to_state, **_utc_values(values))
        self._set_row(self._tis[(key.dag_id, key.run_id)], (key.task_id, key.map_index),
                      _Ti(new, row.pool))
        self._journal.append(StateTransition(key.dag_id, key.run_id, key.task_id,
                                             key.map_index, new.try_number, old.state,
                                             to_state, at))
        self._undo(self._journal.pop)

    def transition(self, key: TIKey, from_states: Iterable[str], to_state: str,
                   conn: Any = None, **values: Any) -> bool:
        """Move ``key`` to ``to_state`` only if it is in one of ``from_states``."""
        with self.transaction():
            row = self._row(key)
            if row is None or row.record.state not in set(from_states):
                return False
            self._move(key, row, to_state, _now(), **values)
            return True

    def claim(self, key: TIKey, *, pid: int | None = None, hostname: str = "",
              log_path: str | None = None, start_date: datetime | None = None,
              conn: Any = None) -> tuple[int, int, str] | None:
        """queued -> running for the next try, clearing XComs of earlier tries."""
        start_date = _utc(start_date or _now())
        with self.transaction():
            row = self._row(key)
            if row is None or row.record.state != S.QUEUED:
                return None
            # a sensor resuming from up_for_reschedule (reschedule_date set) keeps its try
            rescheduled = row.record.reschedule_date is not None
            try_number = row.record.try_number + (0 if rescheduled else 1)
            self._move(key, row, S.RUNNING.value, start_date, try_number=try_number,
                       start_date=start_date, heartbeat_at=start_date,
                       pid=os.getpid() if pid is None else pid, hostname=hostname,
                       log_path=log_path, end_date=None, error=None, duration=None,
                       next_retry_at=None, reschedule_date=None)
            if try_number > 1:
                self._drop_xcoms(key)
            return try_number, row.record.max_tries, row.record.operator

    def queue(self, key: TIKey, from_states: Iterable[str], *, pool: str | None = None,
              dag_limit: int | None = None, conn: Any = None) -> str:
        """Queue ``key`` if its pool and DAG have room: ``queued``, ``moved``, ``pool_full``,
        ``dag_full`` or ``no_pool``, as ``MetadataStore.queue`` answers."""
        with self.transaction():
            if pool is not None:
                if pool not in self._pools:
                    return "no_pool"
                if self._active_by_pool[pool] >= self._pools[pool]:
                    return "pool_full"
            if dag_limit is not None and self._active_by_dag[key.dag_id] >= dag_limit:
                return "dag_full"
            moved = self.transition(key, from_states, S.QUEUED.value, queued_at=_now())
            return "queued" if moved else "moved"

    def set_tis_state(self, keys: Iterable[TIKey], to_state: str, *,
                      unless: Iterable[str] = (), conn: Any = None) -> int:
        """Set many instances at once (skips, upstream failures), keeping finished ones."""
        allowed = _ALL_STATES - set(unless) - {to_state}
        with self.transaction():
            return sum(self.transition(key, allowed, to_state) for key in keys)

    def finish_try(self, key: TIKey, *, to_state: str, xcoms: dict[str, str],
                   conn: Any = None, **values: Any) -> bool:
        """XComs and the final state of a try together; False when it is not running."""
        with self.transaction():
            if not self.transition(key, [S.RUNNING.value], to_state, **values):
                return False
            self.push_xcoms(key, xcoms)
            return True

    def heartbeat(self, key: TIKey, pid: int) -> bool:
        with self._lock:
            row = self._row(key)
            if row is None or row.record.state != S.RUNNING or row.record.pid != pid:
                return False
            row.record = dataclasses.replace(row.record, heartbeat_at=_now())
            return True

    def stale_running(self, timeout: timedelta, *, now: datetime | None = None
                      ) -> list[TaskInstanceRecord]:
        limit = _utc(now or _now()) - timeout
        with self._lock:
            return [row.record for rows in self._tis.values() for row in rows.values()
                    if row.record.state == S.RUNNING and row.record.heartbeat_at is not None
                    and row.record.heartbeat_at < limit]

    def previous_ti_states(self, dag_id: str, logical_date: datetime,
                           task_id: str) -> list[str] | None:
        """States of ``task_id`` in the DAG's previous run (None: there is no previous run)."""
        with self._lock:
            earlier = [r for r in self._runs.values()
                       if r.dag_id == dag_id and r.logical_date < logical_date]
            if not earlier:
                return None
            previous = max(earlier, key=lambda r: r.logical_date)
            return [row.record.state for (t, _), row in
                    self._tis[(dag_id, previous.run_id)].items() if t == task_id]

    def try_pokes(self, key: TIKey, try_number: int) -> tuple[datetime | None, int]:
        """When try ``try_number`` of ``key`` first ran and how often it started (a
        rescheduled sensor keeps its try number: its first poke and its poke count)."""
        with self._lock:
            starts = [t.at for t in self._journal
                      if (t.dag_id, t.run_id, t.task_id, t.map_index) == tuple(key)
                      and t.try_number == try_number and t.to_state == S.RUNNING]
        return (min(starts) if starts else None), len(starts)

    def external_states(self, dag_id: str, logical_date: datetime,
                        task_id: str | None = None) -> list[str] | None:
        """States in the run of ``dag_id`` at ``logical_date``: of ``task_id``'s instances, or
        the run's own state when ``task_id`` is None. None: no such run."""
        logical_date = _utc(logical_date)
        with self._lock:
            runs = [r for r in self._runs.values()
                    if r.dag_id == dag_id and r.logical_date == logical_date]
            if not runs:
                return None
            run = runs[-1]
            if task_id is None:
                return [run.state]
            return [row.record.state for (t, _), row in self._tis[(dag_id, run.run_id)].items()
                    if t == task_id]

    def record_sla_miss(self, dag_id: str, run_id: str, task_id: str | None, *, kind: str,
                        deadline_at: datetime, recorded_at: datetime) -> bool:
        """Record a miss; False when it was recorded already."""
        ident = (dag_id, run_id, task_id or "", kind)
        with self._lock:
            if ident in self._sla_misses:
                return False
            self._sla_misses.add(ident)
            return True

    def record_dataset_events(self, uris: Any, *,
                              source: tuple[str, str, str, int] | None = None,
                              extra: Any = None) -> None:
        """One event for each dataset in ``uris`` (kept in memory: a ``dag.test()`` run
        triggers no other DAG)."""
        with self._lock:
            self.dataset_events.extend((uri, dict(extra or {}), source) for uri in uris)

    def transitions(self, dag_id: str, run_id: str) -> list[StateTransition]:
        """Every state change of the run's instances, in the order they happened."""
        with self._lock:
            return [t for t in self._journal if t.dag_id == dag_id and t.run_id == run_id]

    # -- XComs --------------------------------------------------------------------------------

    def push_xcoms(self, key: TIKey, values: dict[str, str], conn: Any = None) -> None:
        """Store serialized XCom values of one instance, replacing earlier ones."""
        if not values:
            return
        for name, text in values.items():  # the SQL store's NOT NULL column refuses these
            if not isinstance(text, str):
                raise StoreError(f"XCom {name!r} of {key} is {type(text).__name__}, "
                                 "not serialized text")
        with self.transaction():
            task = self._xcoms.setdefault(key[:3], {})
            old = task.get(key.map_index)
            task[key.map_index] = {**(old or {}), **values}
            self._undo(lambda: self._restore_xcoms(key, old))

    def _drop_xcoms(self, key: TIKey) -> None:
        old = self._xcoms.get(key[:3], {}).pop(key.map_index, None)
        self._undo(lambda: self._restore_xcoms(key, old))

    def _restore_xcoms(self, key: TIKey, old: dict[str, str] | None) -> None:
        task = self._xcoms.setdefault(key[:3], {})
        if old is None:
            task.pop(key.map_index, None)
        else:
            task[key.map_index] = old

    def get_xcoms(self, dag_id: str, run_id: str, task_id: str, key: str,
                  map_indexes: Iterable[int] | None = None) -> dict[int, str]:
        """Serialized values of ``key`` pushed by ``task_id``, by map index."""
        wanted = None if map_indexes is None else set(map_indexes)
        with self._lock:
            task = self._xcoms.get((dag_id, run_id, task_id), {})
            return {index: values[key] for index, values in task.items()
                    if key in values and (wanted is None or index in wanted)}

    # -- artifacts ----------------------------------------------------------------------------

    def record_artifacts(self, key: TIKey, try_number: int, outputs: list[dict[str, Any]],
                         inputs: list[dict[str, Any]], *, cache_key: str | None = None,
                         config_hash: str | None = None, git_commit: str | None = None
                         ) -> list[int]:
        """Record what a try produced and what each output was made from; returns ids."""
        now = _now()
        ids: list[int] = []
        with self._lock:
            for out in outputs:
                artifact_id = len(self._artifacts) + 1
                self._artifacts.append({
                    "id": artifact_id, "uri": out["uri"], "kind": out.get("kind", "file"),
                    "sha256": out.get("sha256"), "size": out.get("size"),
                    "dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id,
                    "map_index": key.map_index, "try_number": try_number,
                    "cache_key": cache_key, "config_hash": config_hash,
                    "git_commit": git_commit, "extra": out.get("extra") or {},
                    "created_at": now})
                ids.append(artifact_id)
                for item in inputs:
                    self._inputs.append({
                        "id": len(self._inputs) + 1, "artifact_id": artifact_id,
                        "uri": item["uri"], "sha256": item.get("sha256"),
                        "etag": item.get("etag"), "version_id": item.get("version_id"),
                        "size": item.get("size")})
        return ids

    def artifacts_with_cache_key(self, cache_key: str) -> list[dict[str, Any]]:
        """Artifacts recorded under ``cache_key``, newest first."""
        with self._lock:
            return [dict(a) for a in reversed(self._artifacts) if a["cache_key"] == cache_key]

    def artifact_by_uri(self, uri: str) -> dict[str, Any] | None:
        """The newest record of ``uri`` (a trailing slash does not matter)."""
        candidates = {uri, uri.rstrip("/"), uri.rstrip("/") + "/"}
        with self._lock:
            return next((dict(a) for a in reversed(self._artifacts)
                         if a["uri"] in candidates), None)

    def artifact_inputs(self, artifact_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._inputs if i["artifact_id"] == artifact_id]
