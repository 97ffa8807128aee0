"""The metadata database: connecting, keeping its schema current with Alembic, and
``Database`` (the engine, its pool and write transactions) that every repository uses."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from mlpipe.errors import StoreError
from mlpipe.store import hot_sql as hot

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        if url.startswith("sqlite"):
            options: dict[str, Any] = {"connect_args": {"timeout": 30,
                                                        "check_same_thread": False}}
            if url in ("sqlite://", "sqlite:///:memory:"):
                options["poolclass"] = StaticPool
            else:
                path = Path(url.split("///", 1)[-1])
                _create_private_file(path)
                # Every connection opens the file read-write, never creating it: a database
                # deleted while a command runs is an error, not a new empty file.
                options["creator"] = _existing_file_opener(path.resolve())
            engine = create_engine(url, **options)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _begin_immediate)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise StoreError(f"cannot use database URL {url!r}: {exc}") from None


def _existing_file_opener(path: Path) -> Any:
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(str(path))}?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    return connect


def _create_private_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask: 0644).

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the SQLite database {str(path)!r}: {exc.strerror}"
                         ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by hand (below) as BEGIN IMMEDIATE: a writer takes the lock up
    # front and waits for it, instead of failing when its read snapshot went stale.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    # Writers (the store's ``writer`` engine) lock up front; readers stay deferred. Straight
    # on the DBAPI connection: this runs for every transaction (see ``hot_sql``).
    sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate", False) else "BEGIN"
    try:
        conn.connection.driver_connection.execute(sql)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error,
                                  dialect=conn.dialect) from exc


def _alembic_config(engine: Engine, connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is ConfigParser's interpolation character (URL-encoded passwords, options, paths).
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def migrate(engine: Engine) -> str:
    """Create or upgrade the schema to the newest revision; returns it."""
    from alembic import command

    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(engine, conn), "head")
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the metadata database {_shown(engine)}: {exc.orig}"
                         ) from None
    return head_revision()


def ensure_schema(engine: Engine, *, migrate_if_needed: bool = True) -> None:
    """Migrate an empty or outdated schema; one clear error for one this mlpipe cannot use.

    Processes opening one fresh SQLite database at once (a scheduler and a command started
    together) take turns through a lock file beside it: the second finds it migrated.
    """
    if is_current(engine):
        return
    if not migrate_if_needed:
        raise StoreError(f"the metadata database {_shown(engine)} is not migrated; run "
                         "'mlpipe db migrate'")
    with _migration_lock(engine):
        revision = _current_or_error(engine)
        if revision == head_revision():
            return
        if revision is not None and not _known_revision(revision):
            raise StoreError(
                f"the metadata database {_shown(engine)} is at schema revision {revision!r}, "
                f"newer than this mlpipe knows (latest {head_revision()!r}): upgrade mlpipe")
        migrate(engine)


def database_failure(exc: BaseException) -> str | None:
    """One line for an error the database driver raised mid-command (the file deleted, the
    server gone); None for any other error."""
    if not isinstance(exc, DBAPIError):
        return None
    return (f"the metadata database failed: {exc.orig}; nothing after this point was "
            "recorded (check that the database exists and is reachable, then run the "
            "command again)")


def _shown(engine: Engine) -> str:
    return repr(engine.url.render_as_string(hide_password=True))


def _current_or_error(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    except OperationalError as exc:
        hint = ""
        if engine.url.get_backend_name() == "sqlite" and \
                ("unable to open" in str(exc.orig) or "readonly" in str(exc.orig)):
            hint = ("; the file and its folder must be writable (SQLite writes -wal and -shm "
                    "files beside it)")
        raise StoreError(f"cannot reach the metadata database {_shown(engine)}: {exc.orig}"
                         f"{hint}") from None


def _known_revision(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def _migration_lock(engine: Engine) -> Any:
    """An exclusive file lock beside a SQLite file; nothing for other databases (Alembic's
    own transaction serialises PostgreSQL's DDL)."""
    path = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return contextlib.nullcontext()
    from filelock import FileLock

    return FileLock(f"{path}.migrate.lock", timeout=120)


def reset(engine: Engine) -> None:
    """Drop every mlpipe table (and Alembic's version table), then migrate again."""
    from mlpipe.store.rows import Base

    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate(engine)


def is_current(engine: Engine) -> bool:
    return _current_or_error(engine) == head_revision()


def has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


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


class Database:
    """One metadata database (SQLite or PostgreSQL): its engine, pool and write transactions."""

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

    @contextmanager
    def within(self, conn: Connection | None) -> Iterator[Connection]:
        """``conn`` (the caller's transaction) if given, else a new write transaction."""
        if conn is not None:
            yield conn
            return
        with self._write() as own:
            yield own

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

    def dispose(self) -> None:
        owned = getattr(self._own, "conn", None) if self._own is not None else None
        if owned is not None and owned[0] == os.getpid():
            owned[1].close()
            self._own.conn = None  # type: ignore[union-attr]
        self.engine.dispose()
