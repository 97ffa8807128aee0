"""``SqlHook`` / ``PostgresHook``: SQLAlchemy engines from connections (loaded on first use).

A connection's type picks the driver (``postgres``/``postgresql`` -> psycopg 3, ``sqlite``;
any other type is used as the SQLAlchemy driver name, e.g. ``mysql+pymysql``). Its string
extras become URL query parameters (``sslmode=require``); ``engine_kwargs`` (a JSON object)
goes to ``create_engine``. A SQLite connection keeps the database file in ``host``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from mlpipe.connections.connection import Connection
from mlpipe.errors import ConnectionFailedError, HookError
from mlpipe.hooks.base import BaseHook
from mlpipe.hooks.sql_split import split_statements

DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
           "sqlite": "sqlite"}
Parameters = Mapping[str, Any] | Sequence[Any] | None


class SqlHook(BaseHook):
    """A SQL database behind a connection: engine, DB-API connection, queries."""

    default_conn_name = "sql_default"
    #: forced driver (``PostgresHook``); None: chosen by the connection's type
    driver: str | None = None

    def __init__(self, conn_id: str | None = None, *, sql_conn_id: str | None = None,
                 connection: Connection | None = None,
                 engine_kwargs: Mapping[str, Any] | None = None) -> None:
        conn_id = _one_conn_id(conn_id, "sql_conn_id", sql_conn_id)
        super().__init__(conn_id or self.default_conn_name, connection=connection)
        self.engine_kwargs = dict(engine_kwargs or {})
        self._engine: Any = None

    @property
    def sqlalchemy_url(self) -> Any:
        """The connection as a SQLAlchemy ``URL``."""
        from sqlalchemy.engine import URL

        conn = self.connection
        drivername = self.driver or DRIVERS.get(conn.conn_type, conn.conn_type)
        if drivername.startswith("sqlite"):
            return URL.create(drivername, database=conn.host or None)
        query = {k: v for k, v in conn.extra.items()
                 if isinstance(v, str) and k != "engine_kwargs"}
        return URL.create(drivername, username=conn.login, password=conn.password,
                          host=conn.host, port=conn.port, database=conn.schema, query=query)

    def get_sqlalchemy_engine(self) -> Any:
        """The SQLAlchemy ``Engine`` (created once per hook)."""
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.exc import ArgumentError, NoSuchModuleError

            options = {"pool_pre_ping": True, **self.connection.extra.get("engine_kwargs", {}),
                       **self.engine_kwargs}
            try:
                engine = create_engine(self.sqlalchemy_url, **options)
            except (ArgumentError, NoSuchModuleError, ModuleNotFoundError, TypeError) as exc:
                raise HookError(self.conn_id, self.endpoint(),
                                f"cannot make a SQLAlchemy engine: {exc}") from None
            if engine.dialect.name == "sqlite":
                _transactional_ddl(engine)
            self._engine = engine
        return self._engine

    def get_conn(self) -> Any:
        """A DB-API connection from the engine's pool (close it to give it back)."""
        with self._connect_errors():
            return self.get_sqlalchemy_engine().raw_connection()

    @contextmanager
    def _connect_errors(self) -> Iterator[None]:
        from sqlalchemy.exc import DBAPIError

        try:
            yield
        except DBAPIError as exc:
            raise ConnectionFailedError(self.conn_id, self.endpoint(),
                                        f"cannot connect: {_first_line(exc.orig or exc)}"
                                        ) from None

    def run(self, sql: str | Sequence[str],
            parameters: Parameters = None) -> list[tuple[Any, ...]] | None:
        """Run the statements of ``sql`` in one transaction (committed at the end).

        ``parameters`` (a mapping for ``:name`` placeholders, or a sequence in the driver's
        own style) are passed to every statement. Returns the rows of the last statement, or
        None if it returns no rows.
        """
        statements = split_statements(sql) if isinstance(sql, str) else list(sql)
        if not statements:
            raise HookError(self.conn_id, self.endpoint(), "no SQL statement to run")
        from sqlalchemy.exc import DBAPIError

        engine = self.get_sqlalchemy_engine()
        with self._connect_errors():
            connection = engine.connect()
        rows: list[tuple[Any, ...]] | None = None
        with connection:
            for statement in statements:
                try:
                    result = _execute(connection, statement, parameters)
                    rows = [tuple(r) for r in result.fetchall()] if result.returns_rows \
                        else None
                except DBAPIError as exc:
                    connection.rollback()
                    raise HookError(self.conn_id, self.endpoint(),
                                    f"{_shorten(statement)}: {_first_line(exc.orig or exc)}"
                                    ) from None
            connection.commit()
        return rows

    def get_records(self, sql: str | Sequence[str],
                    parameters: Parameters = None) -> list[tuple[Any, ...]]:
        """The rows of the (last) statement; ``[]`` if it returns none."""
        return self.run(sql, parameters) or []

    def get_first(self, sql: str, parameters: Parameters = None) -> tuple[Any, ...] | None:
        """The first row of the (last) statement, or None."""
        records = self.get_records(sql, parameters)
        return records[0] if records else None

    def test_connection(self) -> str:
        """``select 1`` through the connection."""
        value = self.get_first("select 1")
        return f"select 1 returned {value[0] if value else None}"


class PostgresHook(SqlHook):
    """PostgreSQL through psycopg 3 (``postgres_default`` unless told otherwise)."""

    default_conn_name = "postgres_default"
    driver = "postgresql+psycopg"

    def __init__(self, conn_id: str | None = None, *, postgres_conn_id: str | None = None,
                 connection: Connection | None = None,
                 engine_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(_one_conn_id(conn_id, "postgres_conn_id", postgres_conn_id),
                         connection=connection, engine_kwargs=engine_kwargs)


def _one_conn_id(positional: str | None, name: str, named: str | None) -> str | None:
    """The connection id given positionally or as ``name=`` (Airflow's spelling)."""
    if positional is not None and named is not None and positional != named:
        raise HookError(positional, "no endpoint",
                        f"two connection ids given: {positional!r} and {name}={named!r}; "
                        "pass one")
    return positional if positional is not None else named


def _transactional_ddl(engine: Any) -> None:
    """Make SQLite's driver begin every transaction itself, so DDL is rolled back too.

    By default ``sqlite3`` only begins before INSERT/UPDATE/DELETE: a failing script would
    keep the tables it created (SQLAlchemy's documented recipe).
    """
    from sqlalchemy import event

    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    event.listen(engine, "connect", _no_driver_transactions)
    event.listen(engine, "begin", _begin)


def _execute(connection: Any, statement: str, parameters: Parameters) -> Any:
    if isinstance(parameters, Mapping):
        from sqlalchemy import text

        return connection.execute(text(statement), dict(parameters))
    if parameters is not None:
        return connection.exec_driver_sql(statement, tuple(parameters))
    return connection.exec_driver_sql(statement)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _shorten(statement: str, limit: int = 200) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
