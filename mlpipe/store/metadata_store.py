"""``MetadataStore``: every read and write the engine makes to the metadata database.

State changes of task instances are compare-and-set (``UPDATE ... WHERE state IN (...)``)
and record a transition row in the same transaction, so two processes can never both move
one task instance from queued to running.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from mlpipe.errors import RunExistsError, RunNotFoundError, StoreError
from mlpipe.store import database
from mlpipe.store import hot_sql as hot
from mlpipe.store.entities import (
    DagRecord,
    DagRunRecord,
    StateTransition,
    TaskInstanceRecord,
    TIKey,
)
from mlpipe.store.rows import (
    ACTIVE_STATES_SQL,
    ArtifactInputRow,
    ArtifactRow,
    DagRow,
    DagRunRow,
    ImportErrorRow,
    PoolRow,
    StateTransitionRow,
    TaskInstanceRow,
    UTCDateTime,
    XComRow,
)

R = TypeVar("R")

_TI = TaskInstanceRow.__table__
_RUN = DagRunRow.__table__
_XCOM = XComRow.__table__
_TRANSITION = StateTransitionRow.__table__
_DAG = DagRow.__table__
_IMPORT_ERROR = ImportErrorRow.__table__
_POOL = PoolRow.__table__
_ARTIFACT = ArtifactRow.__table__
_ARTIFACT_INPUT = ArtifactInputRow.__table__


@contextmanager
def _within(conn: Connection | None, store: MetadataStore) -> Iterator[Connection]:
    """``conn`` (the caller's transaction) if given, else a new write transaction."""
    if conn is not None:
        yield conn
        return
    with store._write() as own:
        yield own


#: writer connections a forked child inherited: kept referenced, never finalized there
_INHERITED: list[Connection] = []


class _OwnTransaction:
    """A transaction on a thread's own writer connection; dropped if anything fails.

    Begun and committed on the DBAPI connection (SQLAlchemy's transaction bookkeeping and
    events cost ~15 us a task): only ``hot_sql`` statements run in it, and a SQLAlchemy
    statement would fail loudly (its own BEGIN inside this one).
    """

    def __init__(self, holder: threading.local, conn: Connection) -> None:
        self._holder = holder
        self._conn = conn
        self._dbapi: Any = conn.connection.driver_connection

    def __enter__(self) -> Connection:
        if self._dbapi.in_transaction:  # fail at once instead of deadlocking on the lock
            raise StoreError("a write transaction is already open on this thread's "
                             "connection; finish it before starting another")
        self._run("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self._run("COMMIT" if kind is None else "ROLLBACK")
        except BaseException:
            self._conn.invalidate()  # never reuse a connection in an unknown state
            self._holder.conn = None
            raise

    def _run(self, sql: str) -> None:
        try:
            self._dbapi.execute(sql)
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise hot.as_sqlalchemy_error(self._conn.dialect, sql, None, exc) from exc


def _now() -> datetime:
    return datetime.now(UTC)


def _record(cls: type[R], row: Any) -> R:
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _ti_row(dag_id: str, run_id: str, task_id: str, map_index: int, operator: str,
            max_tries: int, pool: str | None = None) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index,
            "operator": operator, "max_tries": max_tries, "state": "none", "try_number": 0,
            "pool": pool}


def _ti_where(key: TIKey) -> Any:
    return and_(_TI.c.dag_id == key.dag_id, _TI.c.run_id == key.run_id,
                _TI.c.task_id == key.task_id, _TI.c.map_index == key.map_index)


class MetadataStore:
    """The metadata database behind one URL (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: the same pool; transactions begun here take SQLite's write lock up front
        self.writer = engine.execution_options(immediate=True)
        self._row_locks = engine.dialect.name != "sqlite"
        #: whether many queueings may share one transaction: on SQLite a writer holds the
        #: whole database anyway; on PostgreSQL a batch would take pool and DAG row locks in
        #: an order that differs between schedulers, which could deadlock them
        self.batches_writes = not self._row_locks
        #: SQLite: each thread keeps one writer connection for the per-task transactions
        #: (checking a connection out of the pool and back cost more than the statements)
        self._own: threading.local | None = threading.local() if self.batches_writes else None

    def transaction(self) -> Any:
        """A write transaction (``with store.transaction() as conn``) for batched writes.

        Methods that take ``conn`` run inside it; on SQLite it holds the write lock, so no
        other write of this store may be attempted on another connection meanwhile.
        """
        return self._write()

    def _write(self) -> Any:
        """A write transaction: on SQLite on this thread's own connection (see ``_own``)."""
        if self._own is None:
            return self.writer.begin()
        return _OwnTransaction(self._own, self._own_connection())

    def _own_connection(self) -> Connection:
        assert self._own is not None
        owned: tuple[int, Connection] | None = getattr(self._own, "conn", None)
        if owned is None or owned[0] != os.getpid() or owned[1].closed:
            if owned is not None and owned[0] != os.getpid():
                _INHERITED.append(owned[1])  # a forked child never touches the parent's
            owned = (os.getpid(), self.writer.connect())
            self._own.conn = owned
        return owned[1]

    def warm_up(self) -> None:
        """Open this process's connections and have them read the schema, ahead of work
        (a forked executor child, while it waits for its task instance)."""
        if self._own is not None:  # first: it keeps the pool's connection it checks out
            dbapi = self._own_connection().connection.driver_connection
            dbapi.execute("SELECT 1 FROM xcom WHERE 1 = 0").fetchall()  # no BEGIN IMMEDIATE
        with self.engine.connect() as conn:  # back to the pool for the reads
            conn.exec_driver_sql("SELECT 1 FROM task_instance WHERE 1 = 0").all()

    def prime(self) -> None:
        """Prepare, in a process about to fork executor children, what each child's try
        would otherwise prepare for itself: compiled reads and the hot statements' type
        conversions (inherited by the fork)."""
        self.get_xcoms("", "", "", "")
        hot.prime(self.writer.dialect)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> MetadataStore:
        """Connect; migrate an empty or outdated schema (or say what to run if told not to)."""
        engine = database.make_engine(url)
        database.ensure_schema(engine, migrate_if_needed=migrate)
        return cls(engine)

    def dispose(self) -> None:
        owned = getattr(self._own, "conn", None) if self._own is not None else None
        if owned is not None and owned[0] == os.getpid():
            owned[1].close()
            self._own.conn = None  # type: ignore[union-attr]
        self.engine.dispose()

    # -- DAGs ------------------------------------------------------------------------------

    def sync_dags(self, files: dict[str, str], *, paused_on_creation: bool = False) -> None:
        """Record DAGs seen while parsing (``dag_id -> file``); new ones get a row.

        An upsert, so schedulers parsing the same folder at once never collide.
        """
        if not files:
            return
        now = _now()
        with self.writer.begin() as conn:
            conn.execute(_UPSERT_DAG, [
                {"dag_id": d, "fileloc": f, "paused": paused_on_creation, "at": now}
                for d, f in files.items()])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        with self.writer.begin() as conn:
            changed = conn.execute(update(_DAG).where(_DAG.c.dag_id == dag_id)
                                   .values(is_paused=paused)).rowcount
            if not changed:
                conn.execute(insert(_DAG).values(dag_id=dag_id, is_paused=paused))

    def get_dag(self, dag_id: str) -> DagRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_DAG).where(_DAG.c.dag_id == dag_id)).first()
        return _record(DagRecord, row) if row else None

    def list_dags(self) -> list[DagRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_DAG).order_by(_DAG.c.dag_id)).all()
        return [_record(DagRecord, r) for r in rows]

    def replace_import_errors(self, errors: dict[str, str]) -> None:
        """Make the recorded import errors exactly ``errors`` (file -> error line)."""
        now = _now()
        with self.writer.begin() as conn:
            stale = delete(_IMPORT_ERROR)
            if errors:
                stale = stale.where(_IMPORT_ERROR.c.filename.not_in(list(errors)))
            conn.execute(stale)
            if errors:
                conn.execute(_UPSERT_IMPORT_ERROR, [
                    {"filename": f, "error": e, "at": now} for f, e in errors.items()])

    def import_errors(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_IMPORT_ERROR)).all()
        return {r.filename: r.error for r in rows}

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, record: DagRunRecord,
                   task_instances: Iterable[tuple[Any, ...]]) -> DagRunRecord:
        """Insert a run and its task instances.

        Each instance is ``(task_id, map_index, operator, max_tries[, pool])``.
        """
        values = {f.name: getattr(record, f.name) for f in fields(DagRunRecord)}
        try:
            with self.writer.begin() as conn:
                hot.INSERT_RUN.run(conn, values)
                rows = [_ti_row(record.dag_id, record.run_id, *ti) for ti in task_instances]
                if rows:
                    hot.INSERT_TI.run_many(conn, rows)
        except IntegrityError:
            raise RunExistsError(record.dag_id, record.run_id) from None
        return record

    def get_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(_RUN).where(_RUN.c.dag_id == dag_id,
                                                  _RUN.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFoundError(dag_id, run_id, [r.run_id for r in self.list_runs(dag_id)])
        return _record(DagRunRecord, row)

    def list_runs(self, dag_id: str | None = None, *, states: Sequence[str] | None = None,
                  limit: int | None = None) -> list[DagRunRecord]:
        query = select(_RUN).order_by(_RUN.c.logical_date, _RUN.c.id)
        if dag_id is not None:
            query = query.where(_RUN.c.dag_id == dag_id)
        if states:
            query = query.where(_RUN.c.state.in_(list(states)))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(DagRunRecord, r) for r in conn.execute(query).all()]

    def latest_run(self, dag_id: str) -> DagRunRecord | None:
        query = select(_RUN).where(_RUN.c.dag_id == dag_id).order_by(_RUN.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _record(DagRunRecord, row) if row else None

    def set_run_state(self, dag_id: str, run_id: str, state: str, **values: Any) -> None:
        with self.writer.begin() as conn:
            conn.execute(update(_RUN).where(_RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id)
                         .values(state=state, **values))

    def end_run(self, dag_id: str, run_id: str, state: str, end_date: datetime) -> str | None:
        """Record a run's final state; returns its MLflow parent run id (if a task made one)."""
        with self._write() as conn:
            row = hot.END_RUN.run(conn, {"dag_id": dag_id, "run_id": run_id, "state": state,
                                         "end_date": end_date}).fetchone()
        if row is None:
            raise RunNotFoundError(dag_id, run_id, [r.run_id for r in self.list_runs(dag_id)])
        return row[0]  # type: ignore[no-any-return]

    # -- task instances ----------------------------------------------------------------------

    def get_ti(self, key: TIKey) -> TaskInstanceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_SELECT_TI, key._asdict()).first()
        return _record(TaskInstanceRecord, row) if row else None

    def list_tis(self, dag_id: str, run_id: str, *, task_ids: Iterable[str] | None = None,
                 states: Iterable[str] | None = None) -> list[TaskInstanceRecord]:
        query = select(_TI).where(_TI.c.dag_id == dag_id, _TI.c.run_id == run_id)
        if task_ids is not None:
            query = query.where(_TI.c.task_id.in_(list(task_ids)))
        if states is not None:
            query = query.where(_TI.c.state.in_(list(states)))
        query = query.order_by(_TI.c.task_id, _TI.c.map_index)
        with self.engine.connect() as conn:
            return [_record(TaskInstanceRecord, r) for r in conn.execute(query).all()]

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
                conn.execute(delete(_TI).where(_ti_where(TIKey(dag_id, run_id, task_id,
                                                               map_index))))
            rows = [_ti_row(dag_id, run_id, *ti) for ti in task_instances]
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
                                         "to_state": to_state, "at": _now()})
        return True

    def claim(self, key: TIKey, *, pid: int | None = None, hostname: str = "",
              log_path: str | None = None, start_date: datetime | None = None,
              conn: Connection | None = None) -> tuple[int, int, str] | None:
        """queued -> running for the next try, clearing XComs of earlier tries, atomically.

        Returns ``(try_number, max_tries, operator)``, or None if the instance was not
        queued (another process claimed it first, or it was cleared).
        """
        start_date = start_date or _now()
        params = {**key._asdict(), "start_date": start_date, "hostname": hostname,
                  "pid": os.getpid() if pid is None else pid, "log_path": log_path}
        with _within(conn, self) as conn:
            row = hot.CLAIM.run(conn, params).fetchone()
            if row is None:
                return None
            try_number, max_tries, operator = row
            hot.INSERT_TRANSITION.run(conn, {**params, "from_state": "queued",
                                             "to_state": "running", "at": start_date})
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
        allowed = _ALL_STATES - set(unless) - {to_state}
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
                busy = set() if stop_running else {"running", "queued"}
                if self.transition(key, _ALL_STATES - {"none", *busy}, "none",
                                   conn, max_tries=max_tries, end_date=None,
                                   next_retry_at=None, pid=None):
                    hot.DELETE_XCOMS.run(conn, key._asdict())
                    cleared.append(key)
        return cleared

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
        if not self.transition(key, from_states, "queued", conn, queued_at=_now()):
            return "moved"
        return "queued"

    def previous_ti_states(self, dag_id: str, logical_date: datetime,
                           task_id: str) -> list[str] | None:
        """States of ``task_id`` in the DAG's previous run (None: there is no previous run)."""
        with self.engine.connect() as conn:
            previous = conn.execute(
                select(_RUN.c.run_id).where(_RUN.c.dag_id == dag_id,
                                            _RUN.c.logical_date < logical_date)
                .order_by(_RUN.c.logical_date.desc()).limit(1)).scalar()
            if previous is None:
                return None
            return list(conn.execute(select(_TI.c.state).where(
                _TI.c.dag_id == dag_id, _TI.c.run_id == previous,
                _TI.c.task_id == task_id)).scalars())

    # -- pools ------------------------------------------------------------------------------

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        with self.writer.begin() as conn:
            changed = conn.execute(update(_POOL).where(_POOL.c.name == name).values(
                slots=slots, description=description)).rowcount
            if not changed:
                conn.execute(insert(_POOL).values(name=name, slots=slots,
                                                  description=description))

    def list_pools(self) -> list[dict[str, Any]]:
        """Pools with their slots and how many are in use (queued or running)."""
        with self.engine.connect() as conn:
            used = dict(conn.execute(
                select(_TI.c.pool, func.count()).where(_TI.c.pool.is_not(None),
                                                       text(ACTIVE_STATES_SQL))
                .group_by(_TI.c.pool)).all())
            rows = conn.execute(select(_POOL).order_by(_POOL.c.name)).all()
        return [{"pool": r.name, "slots": r.slots, "used": used.get(r.name, 0),
                 "description": r.description} for r in rows]

    def delete_pool(self, name: str) -> bool:
        with self.writer.begin() as conn:
            return bool(conn.execute(delete(_POOL).where(_POOL.c.name == name)).rowcount)

    # -- run leases (one scheduler drives a run at a time) -----------------------------------

    def claim_runs(self, scheduler_id: str, lease: timedelta, *, dag_ids: Iterable[str],
                   limit: int = 50) -> list[DagRunRecord]:
        """Take queued or running runs that no live scheduler holds, oldest first.

        Rows are locked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two schedulers
        never take the same run; a run whose holder stopped renewing is taken over.
        """
        now = _now()
        free = or_(_RUN.c.claimed_by.is_(None), _RUN.c.claimed_by == scheduler_id,
                   _RUN.c.lease_until < now)
        with self.writer.begin() as conn:
            rows = conn.execute(
                select(_RUN).where(
                    _RUN.c.dag_id.in_(list(dag_ids)),
                    _RUN.c.state.in_(("queued", "running")),
                    free)
                .order_by(_RUN.c.logical_date, _RUN.c.id).limit(limit)
                .with_for_update(skip_locked=True)).all()
            if rows:
                conn.execute(update(_RUN).where(_RUN.c.id.in_([r.id for r in rows])).values(
                    claimed_by=scheduler_id, lease_until=now + lease))
        return [_record(DagRunRecord, r) for r in rows]

    def renew_leases(self, scheduler_id: str, lease: timedelta) -> set[tuple[str, str]]:
        """Extend this holder's leases; returns the ``(dag_id, run_id)`` it still holds."""
        with self.writer.begin() as conn:
            conn.execute(update(_RUN).where(_RUN.c.claimed_by == scheduler_id,
                                            _RUN.c.state.in_(("queued", "running")))
                         .values(lease_until=_now() + lease))
            held = conn.execute(select(_RUN.c.dag_id, _RUN.c.run_id).where(
                _RUN.c.claimed_by == scheduler_id)).all()
        return {(r.dag_id, r.run_id) for r in held}

    def lease_run(self, holder: str, dag_id: str, run_id: str, lease: timedelta) -> bool:
        """Take one run for ``holder`` unless another live holder has it."""
        now = _now()
        with self.writer.begin() as conn:
            return bool(conn.execute(update(_RUN).where(
                _RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id,
                or_(_RUN.c.claimed_by.is_(None), _RUN.c.claimed_by == holder,
                    _RUN.c.lease_until < now)
            ).values(claimed_by=holder, lease_until=now + lease)).rowcount)

    def release_dead_schedulers(self, alive: str) -> int:
        """Free runs held by other schedulers (on SQLite, where only ``alive`` can run)."""
        with self.writer.begin() as conn:
            return int(conn.execute(update(_RUN).where(
                _RUN.c.claimed_by.like("scheduler:%"), _RUN.c.claimed_by != alive
            ).values(claimed_by=None, lease_until=None)).rowcount)

    def release_runs(self, scheduler_id: str, run_ids: Iterable[tuple[str, str]] | None = None
                     ) -> None:
        """Give runs back (all of this scheduler's, or the given ``(dag_id, run_id)``)."""
        with self.writer.begin() as conn:
            query = update(_RUN).where(_RUN.c.claimed_by == scheduler_id)
            if run_ids is not None:
                pairs = list(run_ids)
                if not pairs:
                    return
                query = query.where(tuple_(_RUN.c.dag_id, _RUN.c.run_id).in_(pairs))
            conn.execute(query.values(claimed_by=None, lease_until=None))

    def active_run_count(self, dag_id: str) -> int:
        """Runs of the DAG that are queued or running."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_RUN).where(
                _RUN.c.dag_id == dag_id, _RUN.c.state.in_(("queued", "running")))).scalar_one())

    def start_run_if_room(self, dag_id: str, run_id: str, max_active_runs: int) -> bool:
        """queued -> running if the DAG has fewer than ``max_active_runs`` running runs."""
        with self.writer.begin() as conn:
            conn.execute(select(_DAG.c.dag_id).where(_DAG.c.dag_id == dag_id)
                         .with_for_update())
            running = conn.execute(select(func.count()).select_from(_RUN).where(
                _RUN.c.dag_id == dag_id, _RUN.c.state == "running")).scalar_one()
            if running >= max_active_runs:
                return False
            return bool(conn.execute(update(_RUN).where(
                _RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id, _RUN.c.state == "queued"
            ).values(state="running", start_date=_now())).rowcount)

    # -- artifacts and lineage -----------------------------------------------------------

    def record_artifacts(self, key: TIKey, try_number: int, outputs: list[dict[str, Any]],
                         inputs: list[dict[str, Any]], *, cache_key: str | None = None,
                         config_hash: str | None = None, git_commit: str | None = None
                         ) -> list[int]:
        """Record what a try produced and what each output was made from; returns row ids.

        ``outputs``: dicts with uri, kind, sha256, size, extra. ``inputs``: dicts with uri
        and optionally sha256, etag, version_id, size (artifacts or source objects).
        """
        now = _now()
        ids: list[int] = []
        with self.writer.begin() as conn:
            for out in outputs:
                row_id = conn.execute(insert(_ARTIFACT).values(
                    uri=out["uri"], kind=out.get("kind", "file"), sha256=out.get("sha256"),
                    size=out.get("size"), dag_id=key.dag_id, run_id=key.run_id,
                    task_id=key.task_id, map_index=key.map_index, try_number=try_number,
                    cache_key=cache_key, config_hash=config_hash, git_commit=git_commit,
                    extra=out.get("extra") or {}, created_at=now,
                ).returning(_ARTIFACT.c.id)).scalar_one()
                ids.append(int(row_id))
                if inputs:
                    conn.execute(insert(_ARTIFACT_INPUT), [
                        {"artifact_id": row_id, "uri": i["uri"], "sha256": i.get("sha256"),
                         "etag": i.get("etag"), "version_id": i.get("version_id"),
                         "size": i.get("size")} for i in inputs])
        return ids

    def artifacts_with_cache_key(self, cache_key: str) -> list[dict[str, Any]]:
        """Artifacts recorded under ``cache_key``, newest try first."""
        query = (select(_ARTIFACT).where(_ARTIFACT.c.cache_key == cache_key)
                 .order_by(_ARTIFACT.c.id.desc()))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def artifact_by_uri(self, uri: str) -> dict[str, Any] | None:
        """The newest record of ``uri`` (a trailing slash does not matter)."""
        candidates = {uri, uri.rstrip("/"), uri.rstrip("/") + "/"}
        query = (select(_ARTIFACT).where(_ARTIFACT.c.uri.in_(candidates))
                 .order_by(_ARTIFACT.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def artifact_inputs(self, artifact_id: int) -> list[dict[str, Any]]:
        query = (select(_ARTIFACT_INPUT).where(_ARTIFACT_INPUT.c.artifact_id == artifact_id)
                 .order_by(_ARTIFACT_INPUT.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def forget_cache(self, dag_id: str, run_id: str | None, task_ids: Iterable[str]) -> int:
        """Drop cache keys of what these tasks produced, so their next try runs for real."""
        query = update(_ARTIFACT).where(_ARTIFACT.c.dag_id == dag_id,
                                        _ARTIFACT.c.task_id.in_(list(task_ids)))
        if run_id is not None:
            query = query.where(_ARTIFACT.c.run_id == run_id)
        with self.writer.begin() as conn:
            return int(conn.execute(query.values(cache_key=None)).rowcount)

    def automated_run_at(self, dag_id: str, logical_date: datetime) -> DagRunRecord | None:
        """A scheduled or backfill run of ``dag_id`` for ``logical_date``, if any."""
        query = (select(_RUN).where(_RUN.c.dag_id == dag_id,
                                    _RUN.c.logical_date == logical_date,
                                    _RUN.c.run_type.in_(("scheduled", "backfill")))
                 .order_by(_RUN.c.id).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _record(DagRunRecord, row) if row else None

    def set_mlflow_run_id(self, dag_id: str, run_id: str, mlflow_run_id: str) -> str:
        """Record the DAG run's MLflow parent run unless one is recorded; returns the winner."""
        with self.writer.begin() as conn:
            conn.execute(update(_RUN).where(_RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id,
                                            _RUN.c.mlflow_run_id.is_(None))
                         .values(mlflow_run_id=mlflow_run_id))
            return str(conn.execute(select(_RUN.c.mlflow_run_id).where(
                _RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id)).scalar_one())

    def get_mlflow_run_id(self, dag_id: str, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(_RUN.c.mlflow_run_id).where(
                _RUN.c.dag_id == dag_id, _RUN.c.run_id == run_id)).scalar()

    def latest_scheduled_run(self, dag_id: str) -> DagRunRecord | None:
        """The newest automated run (scheduled or backfill) by logical date."""
        query = (select(_RUN).where(_RUN.c.dag_id == dag_id,
                                    _RUN.c.run_type.in_(("scheduled", "backfill")))
                 .order_by(_RUN.c.logical_date.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _record(DagRunRecord, row) if row else None

    @staticmethod
    def _replace_mapped(conn: Connection, key: TIKey, max_tries: int) -> None:
        """All instances of a mapped task (and their XComs) become one unexpanded instance."""
        where = (_TI.c.dag_id == key.dag_id, _TI.c.run_id == key.run_id,
                 _TI.c.task_id == key.task_id)
        operator = conn.execute(select(_TI.c.operator).where(*where).limit(1)).scalar()
        conn.execute(delete(_XCOM).where(_XCOM.c.dag_id == key.dag_id,
                                         _XCOM.c.run_id == key.run_id,
                                         _XCOM.c.task_id == key.task_id))
        conn.execute(delete(_TI).where(*where))
        conn.execute(insert(_TI).values(
            dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, map_index=-1,
            state="none", try_number=0, max_tries=max_tries, operator=operator or ""))

    def heartbeat(self, key: TIKey, pid: int) -> bool:
        """Mark a running instance alive; False if it is no longer running (stop it)."""
        with self.writer.begin() as conn:
            return bool(conn.execute(
                update(_TI).where(_ti_where(key), _TI.c.state == "running", _TI.c.pid == pid)
                .values(heartbeat_at=_now())).rowcount)

    def stale_running(self, timeout: timedelta, *, now: datetime | None = None
                      ) -> list[TaskInstanceRecord]:
        """Running instances whose last heartbeat is older than ``timeout``."""
        limit = (now or _now()) - timeout
        query = select(_TI).where(text(ACTIVE_STATES_SQL), _TI.c.state == "running",
                                  _TI.c.heartbeat_at < limit)
        with self.engine.connect() as conn:
            return [_record(TaskInstanceRecord, r) for r in conn.execute(query).all()]

    def transitions(self, dag_id: str, run_id: str) -> list[StateTransition]:
        query = select(_TRANSITION).where(_TRANSITION.c.dag_id == dag_id,
                                          _TRANSITION.c.run_id == run_id
                                          ).order_by(_TRANSITION.c.id)
        with self.engine.connect() as conn:
            return [_record(StateTransition, r) for r in conn.execute(query).all()]

    # -- XCom ---------------------------------------------------------------------------------

    def push_xcoms(self, key: TIKey, values: dict[str, str],
                   conn: Connection | None = None) -> None:
        """Store serialized XCom values of one instance, replacing earlier ones."""
        if conn is None:
            with self.writer.begin() as own:
                self.push_xcoms(key, values, own)
            return
        if values:
            base = key._asdict()
            hot.UPSERT_XCOM.run_many(conn, [{**base, "key": k, "value": v}
                                            for k, v in values.items()])

    def clear_xcoms(self, key: TIKey) -> None:
        with self.writer.begin() as conn:
            conn.execute(delete(_XCOM).where(
                _XCOM.c.dag_id == key.dag_id, _XCOM.c.run_id == key.run_id,
                _XCOM.c.task_id == key.task_id, _XCOM.c.map_index == key.map_index))

    def get_xcoms(self, dag_id: str, run_id: str, task_id: str, key: str,
                  map_indexes: Iterable[int] | None = None) -> dict[int, str]:
        """Serialized values of ``key`` pushed by ``task_id``, by map index."""
        params = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "key": key}
        with self.engine.connect() as conn:
            found = {r.map_index: r.value for r in conn.execute(_SELECT_XCOMS, params)}
        if map_indexes is not None:
            wanted = set(map_indexes)
            return {i: v for i, v in found.items() if i in wanted}
        return found

    def finish_try(self, key: TIKey, *, to_state: str, xcoms: dict[str, str],
                   conn: Connection | None = None, **values: Any) -> bool:
        """XComs and the final state of a try, in one transaction (``conn``'s if given).

        False (nothing written) when the instance is no longer running.
        """
        if conn is None:
            with self.try_transaction(key) as own:
                return self.finish_try(key, to_state=to_state, xcoms=xcoms, conn=own,
                                       **values)
        if not self.transition(key, ["running"], to_state, conn, **values):
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


_SELECT_TI = select(_TI).where(
    _TI.c.dag_id == bindparam("dag_id"), _TI.c.run_id == bindparam("run_id"),
    _TI.c.task_id == bindparam("task_id"), _TI.c.map_index == bindparam("map_index"))
_SELECT_XCOMS = text(
    "SELECT map_index, value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id "
    "AND task_id = :task_id AND key = :key")
# Both SQLite (3.24+) and PostgreSQL (9.5+) speak these upserts.
_UPSERT_DAG = text(
    "INSERT INTO dag (dag_id, is_paused, fileloc, last_parsed_at) "
    "VALUES (:dag_id, :paused, :fileloc, :at) ON CONFLICT (dag_id) DO UPDATE SET "
    "fileloc = excluded.fileloc, last_parsed_at = excluded.last_parsed_at"
).bindparams(bindparam("at", type_=UTCDateTime()))
_UPSERT_IMPORT_ERROR = text(
    "INSERT INTO import_error (filename, error, recorded_at) VALUES (:filename, :error, :at) "
    "ON CONFLICT (filename) DO UPDATE SET error = excluded.error, "
    "recorded_at = excluded.recorded_at"
).bindparams(bindparam("at", type_=UTCDateTime()))


_ALL_STATES = frozenset({"none", "scheduled", "queued", "running", "success", "failed",
                         "skipped", "up_for_retry", "upstream_failed", "removed"})

__all__ = ["MetadataStore"]
