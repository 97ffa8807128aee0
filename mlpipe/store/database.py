"""Connecting to the metadata database and keeping its schema current with Alembic."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from mlpipe.errors import StoreError

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
