"""``SqlHook`` / ``PostgresHook`` on SQLite and PostgreSQL, with clear failures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpipe.connections import Connection, ConnectionFailedError, HookError
from mlpipe.hooks import PostgresHook, SqlHook, hook_for

POSTGRES_URI = os.environ.get("MLPIPE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test"
                              ).replace("postgresql+psycopg://", "postgresql://")


def _postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URI, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_conn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
             tmp_path: Path) -> str:
    """``MLPIPE_CONN_DB`` pointing at a SQLite file or the PostgreSQL test database."""
    if request.param == "postgresql" and not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URI}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URI}")
    uri = POSTGRES_URI if request.param == "postgresql" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("MLPIPE_CONN_DB", uri)
    return "db"


@pytest.fixture
def table(sql_conn: str) -> Iterator[str]:
    """A uniquely named table ``(id int, name text)``, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    hook = SqlHook(sql_conn)
    hook.run(f"create table {name} (id integer primary key, name text)")
    yield name
    hook.run(f"drop table if exists {name}")
    hook.get_sqlalchemy_engine().dispose()


def test_statements_run_in_order_and_the_last_ones_rows_come_back(sql_conn: str,
                                                                 table: str) -> None:
    hook = SqlHook(sql_conn)

    rows = hook.run(f"insert into {table} values (1, 'a;b'); -- a comment; with a semicolon\n"
                    f"insert into {table} values (2, 'it''s');"
                    f"select id, name from {table} order by id")

    assert rows == [(1, "a;b"), (2, "it's")]
    assert hook.run(f"update {table} set name = 'x' where id = 1") is None
    assert hook.get_records(f"select count(*) from {table} where name = 'x'") == [(1,)]
    assert hook.get_first(f"select name from {table} where id = 99") is None


def test_named_parameters_go_to_every_statement(sql_conn: str, table: str) -> None:
    hook = SqlHook(sql_conn)

    hook.run([f"insert into {table} values (:id, :name)"], {"id": 7, "name": "seven"})

    assert hook.get_records(f"select name from {table} where id = :id", {"id": 7}) == [
        ("seven",)]


def test_get_conn_is_a_dbapi_connection(sql_conn: str) -> None:
    conn = SqlHook(sql_conn).get_conn()
    try:
        cursor = conn.cursor()
        cursor.execute("select 1")
        assert cursor.fetchone()[0] == 1
    finally:
        conn.close()


def test_a_failing_statement_rolls_back_and_names_it(sql_conn: str, table: str) -> None:
    hook = SqlHook(sql_conn)

    with pytest.raises(HookError, match=rf"connection 'db' \(.*\): select nope from {table}: "
                                        r".*nope") as info:
        hook.run(f"insert into {table} values (1, 'kept?'); select nope from {table}")

    assert not isinstance(info.value, ConnectionFailedError)
    assert hook.get_records(f"select count(*) from {table}") == [(0,)]


def test_no_statement_is_an_error(sql_conn: str) -> None:
    with pytest.raises(HookError, match="no SQL statement to run"):
        SqlHook(sql_conn).run("-- nothing but a comment")


def test_the_url_carries_driver_credentials_and_extras() -> None:
    conn = Connection("pg", "postgres", host="h", port=5433, login="u", password="p w",
                      schema="d", extra={"sslmode": "require",
                                         "engine_kwargs": {"pool_size": 2}})

    url = PostgresHook(connection=conn).sqlalchemy_url

    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u", "p w", "h", 5433, "d")
    assert dict(url.query) == {"sslmode": "require"}
    assert PostgresHook().conn_id == "postgres_default"


def test_hook_for_picks_the_hook_by_connection_type() -> None:
    assert type(hook_for(Connection("a", "aws"))).__name__ == "S3Hook"
    assert type(hook_for(Connection("p", "postgresql"))) is PostgresHook
    assert type(hook_for(Connection("m", "mysql+pymysql"))) is SqlHook
    with pytest.raises(HookError, match=r"no hook for connection type 'ftp'; known: \["):
        hook_for(Connection("f", "ftp", host="files"))


def test_a_wrong_login_is_one_line_naming_the_connection_with_the_secret_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not _postgres_reachable():
        pytest.skip("PostgreSQL is not reachable")
    secret = f"pw-{uuid.uuid4().hex[:10]}"
    uri = POSTGRES_URI.replace("postgresql://postgres@", f"postgresql://no_such_role:{secret}@")
    monkeypatch.setenv("MLPIPE_CONN_PG_BAD", uri)

    with pytest.raises(ConnectionFailedError,
                       match=r"^connection 'pg_bad' \(postgresql://no_such_role:\*\*\*@"
                             r"127.0.0.1:5432/test\): cannot connect: .*no_such_role") as info:
        SqlHook("pg_bad").test_connection()
    assert secret not in str(info.value) and "\n" not in str(info.value)


def test_an_unreachable_server_is_a_connection_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_PG_DOWN", "postgresql://u:hunter2-x@127.0.0.1:9/db")

    with pytest.raises(ConnectionFailedError,
                       match=r"connection 'pg_down' \(postgresql://u:\*\*\*@127.0.0.1:9/db\): "
                             r"cannot connect: .*refused"):
        PostgresHook("pg_down").get_records("select 1")


def test_an_unknown_driver_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_ODD", "nosuchdb+driver://h/d")

    with pytest.raises(HookError, match=r"connection 'odd' .*cannot make a SQLAlchemy engine"):
        SqlHook("odd").get_sqlalchemy_engine()


def test_postgres_hook_takes_postgres_conn_id_as_airflow_does(
        postgres_databases: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres_databases().replace("postgresql+psycopg://", "postgresql://")
    monkeypatch.setenv("MLPIPE_CONN_WAREHOUSE", url)
    for hook in (PostgresHook(postgres_conn_id="warehouse"), PostgresHook("warehouse"),
                 PostgresHook("warehouse", postgres_conn_id="warehouse"),
                 SqlHook(sql_conn_id="warehouse")):
        assert hook.conn_id == "warehouse"
        assert hook.get_first("select current_database()") == (url.rsplit("/", 1)[1],)
        hook.get_sqlalchemy_engine().dispose()


def test_two_different_conn_ids_are_refused() -> None:
    with pytest.raises(HookError, match=r"two connection ids given: 'a' and "
                                        r"postgres_conn_id='b'; pass one"):
        PostgresHook("a", postgres_conn_id="b")
