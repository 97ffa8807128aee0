"""The statements the engine runs for every task instance, prepared once.

Claiming, state transitions, XCom writes and the queueing gates run several times per task
instance. SQLAlchemy Core costs ~40 us of Python per statement on top of SQLite's own ~10 us,
which was half of ``dag.test()``'s per-task overhead, so on SQLite (pysqlite) these
statements go straight to the DBAPI connection of the SQLAlchemy transaction they belong to
(same connection, same transaction), with parameters converted by the columns' own
SQLAlchemy types. Other databases run them as ordinary ``text()`` statements. The SQL is the
same for both: SQLite's and SQLAlchemy's named parameter style is ``:name``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, TextClause, bindparam, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from mlpipe.store.entities import DagRunRecord
from mlpipe.store.rows import ACTIVE_STATES_SQL, DagRunRow, TaskInstanceRow, UTCDateTime

_TI = TaskInstanceRow.__table__
_RUN = DagRunRow.__table__


class Rows(Protocol):
    """What both a DBAPI cursor and a SQLAlchemy result offer."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


@dataclass(frozen=True, eq=False)  # hashed by identity: caches key on it
class HotStatement:
    """One SQL statement with ``:name`` parameters; ``types`` convert the non-plain ones."""

    sql: str
    types: Mapping[str, TypeEngine[Any]] = field(default_factory=dict)

    @functools.cached_property
    def clause(self) -> TextClause:
        return text(self.sql).bindparams(*[bindparam(n, type_=t) for n, t in self.types.items()])

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Rows:
        """Execute in ``conn``'s transaction."""
        if not _direct(conn.dialect):
            return conn.execute(self.clause, dict(params))
        bound = self._bind(conn.dialect, params)
        try:
            return conn.connection.driver_connection.execute(  # type: ignore[union-attr,no-any-return]
                self.sql, bound)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise as_sqlalchemy_error(conn.dialect, self.sql, bound, exc) from exc

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (one ``executemany``)."""
        if not _direct(conn.dialect):
            conn.execute(self.clause, [dict(r) for r in rows])
            return
        bound = [self._bind(conn.dialect, r) for r in rows]
        try:
            conn.connection.driver_connection.executemany(  # type: ignore[union-attr]
                self.sql, bound)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise as_sqlalchemy_error(conn.dialect, self.sql, bound, exc) from exc

    def _bind(self, dialect: Dialect, params: Mapping[str, Any]) -> Mapping[str, Any]:
        processors = self._processors(dialect)
        if not processors:
            return params
        bound = dict(params)
        for name, process in processors:
            if name in bound:
                bound[name] = process(bound[name])
        return bound

    @functools.cache  # noqa: B019 - statements are module-level and live as long as the process
    def _processors(self, dialect: Dialect) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        found = ((name, _sqlite_utc if isinstance(type_, UTCDateTime)
                  else type_.dialect_impl(dialect).bind_processor(dialect))
                 for name, type_ in self.types.items())
        return tuple((name, process) for name, process in found if process is not None)


def _sqlite_utc(value: datetime | None) -> str | None:
    """What ``UTCDateTime`` then SQLite's ``DATETIME`` store, in one C call (tested equal)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # the engine's own timestamps: drop the "+00:00"
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def as_sqlalchemy_error(dialect: Dialect, sql: str, params: Any, exc: Exception) -> Exception:
    """The error SQLAlchemy would have raised (``IntegrityError``, ``OperationalError``...)."""
    return DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)


@functools.cache
def _direct(dialect: Dialect) -> bool:
    return dialect.name == "sqlite" and dialect.driver == "pysqlite"


_UTC = UTCDateTime()
KEY_SQL = ("dag_id = :dag_id AND run_id = :run_id AND task_id = :task_id "
           "AND map_index = :map_index")

SELECT_STATE = HotStatement(f"SELECT state, try_number FROM task_instance WHERE {KEY_SQL}")
DELETE_XCOMS = HotStatement(f"DELETE FROM xcom WHERE {KEY_SQL}")
POOL_SLOTS = HotStatement("SELECT slots FROM pool WHERE name = :pool")
POOL_SLOTS_LOCKED = HotStatement("SELECT slots FROM pool WHERE name = :pool FOR UPDATE")
# ACTIVE_STATES_SQL written out literally: only then does SQLite use the partial index
POOL_USED = HotStatement(
    f"SELECT count(*) FROM task_instance WHERE pool = :pool AND {ACTIVE_STATES_SQL}")
LOCK_DAG = HotStatement("SELECT dag_id FROM dag WHERE dag_id = :dag_id FOR UPDATE")
DAG_USED = HotStatement(
    f"SELECT count(*) FROM task_instance WHERE dag_id = :dag_id AND {ACTIVE_STATES_SQL}")
UPSERT_XCOM = HotStatement(
    "INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value) "
    "VALUES (:dag_id, :run_id, :task_id, :map_index, :key, :value) "
    "ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE SET value = excluded.value"
)
_RUN_COLUMNS = [f.name for f in fields(DagRunRecord)]
INSERT_RUN = HotStatement(
    f"INSERT INTO dag_run ({', '.join(_RUN_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _RUN_COLUMNS)})",
    {c: _RUN.c[c].type for c in _RUN_COLUMNS},
)
END_RUN = HotStatement(
    "UPDATE dag_run SET state = :state, end_date = :end_date "
    "WHERE dag_id = :dag_id AND run_id = :run_id RETURNING run_id",
    {"end_date": _UTC},
)
SELECT_TI_STATES = HotStatement(
    "SELECT task_id, map_index, state FROM task_instance "
    "WHERE dag_id = :dag_id AND run_id = :run_id")
INSERT_TI = HotStatement(
    "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, operator, max_tries, "
    "state, try_number, pool) VALUES (:dag_id, :run_id, :task_id, :map_index, :operator, "
    ":max_tries, :state, :try_number, :pool)"
)
CLAIM = HotStatement(
    # A sensor resuming from up_for_reschedule (reschedule_date set) keeps its try number.
    "UPDATE task_instance SET state = 'running', "
    "try_number = try_number + CASE WHEN reschedule_date IS NULL THEN 1 ELSE 0 END, "
    "reschedule_date = NULL, "
    "start_date = :start_date, heartbeat_at = :start_date, pid = :pid, hostname = :hostname, "
    "log_path = :log_path, end_date = NULL, error = NULL, duration = NULL, "
    f"next_retry_at = NULL WHERE {KEY_SQL} AND state = 'queued' "
    "RETURNING try_number, max_tries, operator",
    {"start_date": _UTC},
)
INSERT_TRANSITION = HotStatement(
    "INSERT INTO state_transition (dag_id, run_id, task_id, map_index, try_number, "
    "from_state, to_state, at) SELECT dag_id, run_id, task_id, map_index, try_number, "
    f":from_state, :to_state, :at FROM task_instance WHERE {KEY_SQL}",
    {"at": _UTC},
)


@functools.lru_cache(maxsize=64)
def update_statement(columns: tuple[str, ...]) -> HotStatement:
    """``UPDATE task_instance SET state, <columns> WHERE <key> AND state = :from_state``."""
    sets = "".join(f", {c} = :v_{c}" for c in columns)
    return HotStatement(f"UPDATE task_instance SET state = :to_state{sets} "
                        f"WHERE {KEY_SQL} AND state = :from_state",
                        {f"v_{c}": _TI.c[c].type for c in columns})


#: the columns a try's end sets (``MetadataStore.finish_try``), sorted as ``transition`` does
FINISH_COLUMNS = ("duration", "end_date", "error", "next_retry_at")


def prime(dialect: Dialect) -> None:
    """Work out the type conversions of the statements a try runs, ahead of forking."""
    for statement in (CLAIM, UPSERT_XCOM, INSERT_TRANSITION, DELETE_XCOMS,
                      update_statement(FINISH_COLUMNS)):
        statement._processors(dialect)
