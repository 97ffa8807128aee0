"""Task instances: compare-and-set state changes (each with a transition row), claims,
queueing against pools and ``max_active_tasks``, clearing, heartbeats, and a try's result."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import StoreError
from mlpipe.store import hot_sql as hot
from mlpipe.store.entities import (
    StateTransition,
    TaskInstanceRecord,
    TIKey,
)
from mlpipe.store.repositories.common import (
    ALL_STATES,
    RUN,
    TI,
    TRANSITION,
    XCOM,
    record_of,
    ti_row,
    ti_where,
)
from mlpipe.store.repositories.common import (
    now as utc_now,
)
from mlpipe.store.repositories.xcoms import XComRepository
from mlpipe.store.rows import ACTIVE_STATES_SQL


class TaskInstanceRepository(XComRepository):
    """Task instances: compare-and-set state changes (each with a transition row), claims,"""

    def get_ti(self, key: TIKey) -> TaskInstanceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_SELECT_TI, key._asdict()).first()
        return record_of(TaskInstanceRecord, row) if row else None

    def list_tis(self, dag_id: str, run_id: str, *, task_ids: Iterable[str] | None = None,
                 states: Iterable[str] | None = None) -> list[TaskInstanceRecord]:
        query = select(TI).where(TI.c.dag_id == dag_id, TI.c.run_id == run_id)
        if task_ids is not None:
            query = query.where(TI.c.task_id.in_(list(task_ids)))
        if states is not None:
            query = query.where(TI.c.state.in_(list(states)))
        query = query.order_by(TI.c.task_id, TI.c.map_index)
        with self.engine.connect() as conn:
            return [record_of(TaskInstanceRecord, r) for r in conn.execute(query).all()]

    def tis_of_runs(self, dag_id: str, run_ids: Iterable[str]) -> list[TaskInstanceRecord]:
        """Every task instance of these runs of one DAG, in one query (the web grid)."""
        wanted = list(run_ids)
        if not wanted:
            return []
        query = (select(TI).where(TI.c.dag_id == dag_id, TI.c.run_id.in_(wanted))
                 .order_by(TI.c.run_id, TI.c.task_id, TI.c.map_index))
        with self.engine.connect() as conn:
            return [record_of(TaskInstanceRecord, r) for r in conn.execute(query).all()]

    def ti_states(self, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
        """``(task_id, map_index, state)`` of every instance of a run (a light listing)."""
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in hot.SELECT_TI_STATES.run(
                conn, {"dag_id": dag_id, "run_id": run_id}).fetchall()]

    def add_tis(self, dag_id: str, run_id: str,
                task_instances: Iterable[tuple[Any, ...]],
                *, drop: Iterable[tuple[str, int]] = ()) -> None:
        """Add instances (a mapped task's expansion), dropping placeholders in one go."""
        with self.writer.begin() as conn:
            for task_id, map_index in drop:
                conn.execute(delete(TI).where(ti_where(TIKey(dag_id, run_id, task_id,
                                                               map_index))))
            rows = [ti_row(dag_id, run_id, *ti) for ti in task_instances]
            if rows:
                hot.INSERT_TI.run_many(conn, rows)

    def transition(self, key: TIKey, from_states: Iterable[str], to_state: str,
                   conn: Connection | None = None, **values: Any) -> bool:
        """Move ``key`` to ``to_state`` only if it is in one of ``from_states``.

        Returns False (and changes nothing) when another process moved it first. With a
        single expected state this is one UPDATE and one INSERT of the transition row.
        """
        if conn is None:
            with self._write() as own:
                return self.transition(key, from_states, to_state, own, **values)
        allowed = list(from_states)
        params = key._asdict()
        if len(allowed) == 1:
            current = allowed[0]
        else:
            row = hot.SELECT_STATE.run(conn, params).fetchone()
            if row is None or row[0] not in allowed:
                return False
            current = row[0]
        update_sql = hot.update_statement(tuple(sorted(values)))
        changed = update_sql.run(conn, {**params, "to_state": to_state, "from_state": current,
                                        **{f"v_{k}": v for k, v in values.items()}}).rowcount
        if changed != 1:
            return False
        hot.INSERT_TRANSITION.run(conn, {**params, "from_state": current,
                                         "to_state": to_state, "at": utc_now()})
        return True

    def claim(self, key: TIKey, *, pid: int | None = None, hostname: str = "",
              log_path: str | None = None, start_date: datetime | None = None,
              conn: Connection | None = None) -> tuple[int, int, str] | None:
        """queued -> running for the next try, clearing XComs of earlier tries, atomically.

        Returns ``(try_number, max_tries, operator)``, or None if the instance was not
        queued (another process claimed it first, or it was cleared).
        """
        start_date = start_date or utc_now()
        params = {**key._asdict(), "start_date": start_date, "hostname": hostname,
                  "pid": os.getpid() if pid is None else pid, "log_path": log_path}
        with self.within(conn) as conn:
            row = hot.CLAIM.run(conn, params).fetchone()
            if row is None:
                return None
            try_number, max_tries, operator = row
            hot.INSERT_TRANSITION.run(conn, {**params, "from_state": S.QUEUED,
                                             "to_state": S.RUNNING, "at": start_date})
            if try_number > 1:
                hot.DELETE_XCOMS.run(conn, params)
            return try_number, max_tries, operator

    def set_tis_state(self, keys: Iterable[TIKey], to_state: str, *,
                      unless: Iterable[str] = (), conn: Connection | None = None) -> int:
        """Set many instances at once (skips, upstream failures), keeping finished ones."""
        keys = list(keys)
        if not keys:
            return 0
        if conn is None:
            with self.writer.begin() as own:
                return self.set_tis_state(keys, to_state, unless=unless, conn=own)
        allowed = ALL_STATES - set(unless) - {to_state}
        return sum(bool(self.transition(key, allowed, to_state, conn)) for key in keys)

    def clear_tis(self, items: Iterable[tuple[TIKey, int]], *,
                  mapped: set[str] = frozenset(),  # type: ignore[assignment]
                  stop_running: bool = False) -> list[TIKey]:
        """Reset instances to ``none`` with a new ``max_tries`` (clearing their XComs).

        Running and queued instances are left alone unless ``stop_running``: then they are
        reset too, and a running try stops itself at its next heartbeat.

        Instances of ``mapped`` tasks are removed and replaced by one unexpanded instance, so
        the next run expands them again from their (possibly new) input.
        """
        cleared: list[TIKey] = []
        replaced: set[tuple[str, str, str]] = set()
        with self.writer.begin() as conn:
            for key, max_tries in items:
                if key.task_id in mapped:
                    group = (key.dag_id, key.run_id, key.task_id)
                    if group not in replaced:
                        replaced.add(group)
                        self._replace_mapped(conn, key, max_tries)
                    cleared.append(key)
                    continue
                busy = set() if stop_running else {S.RUNNING, S.QUEUED}
                if self.transition(key, ALL_STATES - {S.NONE, *busy}, S.NONE,
                                   conn, max_tries=max_tries, end_date=None,
                                   next_retry_at=None, pid=None, skip_downstream=None,
                                   reschedule_date=None):
                    hot.DELETE_XCOMS.run(conn, key._asdict())
                    cleared.append(key)
        return cleared

    @staticmethod
    def _replace_mapped(conn: Connection, key: TIKey, max_tries: int) -> None:
        """All instances of a mapped task (and their XComs) become one unexpanded instance."""
        where = (TI.c.dag_id == key.dag_id, TI.c.run_id == key.run_id,
                 TI.c.task_id == key.task_id)
        operator = conn.execute(select(TI.c.operator).where(*where).limit(1)).scalar()
        conn.execute(delete(XCOM).where(XCOM.c.dag_id == key.dag_id,
                                         XCOM.c.run_id == key.run_id,
                                         XCOM.c.task_id == key.task_id))
        conn.execute(delete(TI).where(*where))
        conn.execute(insert(TI).values(
            dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, map_index=-1,
            state=S.NONE, try_number=0, max_tries=max_tries, operator=operator or ""))

    def queue(self, key: TIKey, from_states: Iterable[str], *, pool: str | None = None,
              dag_limit: int | None = None, conn: Connection | None = None) -> str:
        """Queue ``key`` if its pool and its DAG have room, atomically with the check.

        Returns ``queued``; ``moved`` (not in ``from_states`` any more); ``pool_full`` or
        ``dag_full`` (try again later); or ``no_pool`` (the pool does not exist). The pool
        and DAG rows are locked for the check (FOR UPDATE on PostgreSQL, the write lock on
        SQLite), so concurrent schedulers never overfill a pool.
        """
        if conn is None:
            with self._write() as own:
                return self.queue(key, from_states, pool=pool, dag_limit=dag_limit, conn=own)
        # Prebuilt statements: this runs once per task instance. SQLite's BEGIN IMMEDIATE
        # already serialises writers, so the row locks are for PostgreSQL only.
        locks = self._row_locks
        if pool is not None:
            row = (hot.POOL_SLOTS_LOCKED if locks else hot.POOL_SLOTS).run(
                conn, {"pool": pool}).fetchone()
            if row is None:
                return "no_pool"
            if hot.POOL_USED.run(conn, {"pool": pool}).fetchone()[0] >= row[0]:
                return "pool_full"
        if dag_limit is not None:
            if locks:
                hot.LOCK_DAG.run(conn, {"dag_id": key.dag_id})
            if hot.DAG_USED.run(conn, {"dag_id": key.dag_id}).fetchone()[0] >= dag_limit:
                return "dag_full"
        if not self.transition(key, from_states, S.QUEUED, conn, queued_at=utc_now()):
            return "moved"
        return "queued"

    def previous_ti_states(self, dag_id: str, logical_date: datetime,
                           task_id: str) -> list[str] | None:
        """States of ``task_id`` in the DAG's previous run (None: there is no previous run)."""
        with self.engine.connect() as conn:
            previous = conn.execute(
                select(RUN.c.run_id).where(RUN.c.dag_id == dag_id,
                                            RUN.c.logical_date < logical_date)
                .order_by(RUN.c.logical_date.desc()).limit(1)).scalar()
            if previous is None:
                return None
            return list(conn.execute(select(TI.c.state).where(
                TI.c.dag_id == dag_id, TI.c.run_id == previous,
                TI.c.task_id == task_id)).scalars())

    def heartbeat(self, key: TIKey, pid: int) -> bool:
        """Mark a running instance alive; False if it is no longer running (stop it)."""
        with self.writer.begin() as conn:
            return bool(conn.execute(
                update(TI).where(ti_where(key), TI.c.state == S.RUNNING, TI.c.pid == pid)
                .values(heartbeat_at=utc_now())).rowcount)

    def stale_running(self, timeout: timedelta, *, now: datetime | None = None
                      ) -> list[TaskInstanceRecord]:
        """Running instances whose last heartbeat is older than ``timeout``."""
        limit = (now or utc_now()) - timeout
        query = select(TI).where(text(ACTIVE_STATES_SQL), TI.c.state == S.RUNNING,
                                  TI.c.heartbeat_at < limit)
        with self.engine.connect() as conn:
            return [record_of(TaskInstanceRecord, r) for r in conn.execute(query).all()]

    def try_pokes(self, key: TIKey, try_number: int) -> tuple[datetime | None, int]:
        """When try ``try_number`` of ``key`` first ran and how often it started: a sensor
        rescheduled between pokes keeps its try number, so this is its first poke and its
        poke count."""
        query = select(func.min(TRANSITION.c.at), func.count()).where(
            TRANSITION.c.dag_id == key.dag_id, TRANSITION.c.run_id == key.run_id,
            TRANSITION.c.task_id == key.task_id, TRANSITION.c.map_index == key.map_index,
            TRANSITION.c.try_number == try_number, TRANSITION.c.to_state == S.RUNNING.value)
        with self.engine.connect() as conn:
            first, count = conn.execute(query).one()
        if first is not None and not isinstance(first, datetime):
            first = datetime.fromisoformat(str(first))  # SQLite's min() loses the type
        return _aware(first), int(count)

    def external_states(self, dag_id: str, logical_date: datetime,
                        task_id: str | None = None) -> list[str] | None:
        """States in the newest run of ``dag_id`` at ``logical_date``: of ``task_id``'s
        instances, or the run's own state when ``task_id`` is None. None: no such run."""
        with self.engine.connect() as conn:
            run = conn.execute(
                select(RUN.c.run_id, RUN.c.state).where(RUN.c.dag_id == dag_id,
                                                         RUN.c.logical_date == logical_date)
                .order_by(RUN.c.id.desc()).limit(1)).first()
            if run is None:
                return None
            if task_id is None:
                return [run.state]
            return list(conn.execute(select(TI.c.state).where(
                TI.c.dag_id == dag_id, TI.c.run_id == run.run_id,
                TI.c.task_id == task_id)).scalars())

    def transitions(self, dag_id: str, run_id: str) -> list[StateTransition]:
        query = select(TRANSITION).where(TRANSITION.c.dag_id == dag_id,
                                          TRANSITION.c.run_id == run_id
                                          ).order_by(TRANSITION.c.id)
        with self.engine.connect() as conn:
            return [record_of(StateTransition, r) for r in conn.execute(query).all()]

    def changed_since(self, last_id: int, *, limit: int = 10_000) -> tuple[list[TIKey], int]:
        """Instances with a state change recorded after transition ``last_id`` (in id order),
        and the last id read: a cheap "what changed" for executors that watch from afar.

        Ids are given at insert, so a transaction that commits late may add an id below one
        already read: callers look at every instance they watch now and then as well.
        """
        query = (select(TRANSITION.c.id, TRANSITION.c.dag_id, TRANSITION.c.run_id,
                        TRANSITION.c.task_id, TRANSITION.c.map_index)
                 .where(TRANSITION.c.id > last_id).order_by(TRANSITION.c.id).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [], last_id
        return [TIKey(r[1], r[2], r[3], r[4]) for r in rows], rows[-1][0]

    def last_transition_id(self) -> int:
        """The id of the newest state change (0 when there is none)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(TRANSITION.c.id))).scalar() or 0

    def finish_try(self, key: TIKey, *, to_state: str, xcoms: dict[str, str],
                   conn: Connection | None = None, **values: Any) -> bool:
        """XComs and the final state of a try, in one transaction (``conn``'s if given).

        False (nothing written) when the instance is no longer running.
        """
        if conn is None:
            with self.try_transaction(key) as own:
                return self.finish_try(key, to_state=to_state, xcoms=xcoms, conn=own,
                                       **values)
        if not self.transition(key, [S.RUNNING], to_state, conn, **values):
            return False
        if xcoms:  # the returned values win over ones pushed by hand during the try
            self.push_xcoms(key, xcoms, conn)
        return True

    @contextmanager
    def try_transaction(self, key: TIKey) -> Iterator[Connection]:
        """A write transaction that records the end of ``key``'s try (``finish_try``).

        The caller (a driver) may add its own writes; a database failure is a
        ``StoreError`` naming the task instance.
        """
        try:
            with self._write() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"cannot record the end of {key}: {exc.orig}") from None


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


_SELECT_TI = select(TI).where(
    TI.c.dag_id == bindparam("dag_id"), TI.c.run_id == bindparam("run_id"),
    TI.c.task_id == bindparam("task_id"), TI.c.map_index == bindparam("map_index"))
