"""``SQLExecuteQueryOperator`` on SQLite and PostgreSQL, in ``dag.test()``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mlpipe import DAG
from mlpipe.hooks import SqlHook
from mlpipe.operators import SQLExecuteQueryOperator

LOGICAL = datetime(2024, 3, 1, tzinfo=UTC)
POSTGRES_URI = os.environ.get("MLPIPE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test"
                              ).replace("postgresql+psycopg://", "postgresql://")


def _postgres_or_skip() -> None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URI, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URI}: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URI}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """``MLPIPE_CONN_WAREHOUSE`` on SQLite or PostgreSQL; returns the conn id."""
    if request.param == "postgresql":
        _postgres_or_skip()
    uri = POSTGRES_URI if request.param == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}"
    monkeypatch.setenv("MLPIPE_CONN_WAREHOUSE", uri)
    return "warehouse"


@pytest.fixture
def table(db: str) -> Iterator[str]:
    """A unique table name, dropped after the test whatever happened."""
    name = f"metrics_{uuid.uuid4().hex[:10]}"
    yield name
    SqlHook(db).run(f"drop table if exists {name}")


def test_the_rows_of_the_last_statement_are_the_xcom(db: str, table: str) -> None:
    with DAG("sql_rows", start_date=LOGICAL) as dag:
        SQLExecuteQueryOperator(
            task_id="query", conn_id=db,
            sql=f"""
                create table {table} (day text, model text, accuracy numeric(5, 3));
                insert into {table} values ('{{{{ ds }}}}', 'cnn', 0.875);
                insert into {table} values ('{{{{ ds }}}}', 'mlp', 0.5);
                select day, model, accuracy from {table} order by model;
            """)

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("query")
    assert ti.state == "success", ti.log
    assert ti.xcom_pull() == [["2024-03-01", "cnn", 0.875], ["2024-03-01", "mlp", 0.5]]


def test_parameters_and_a_sql_file_template(db: str, table: str, tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "best.sql").write_text(
        f"select model from {table} where accuracy >= :threshold and day = '{{{{ ds }}}}'\n")
    with DAG("sql_file", start_date=LOGICAL, template_searchpath=[str(tmp_path / "sql")]) as dag:
        setup = SQLExecuteQueryOperator(
            task_id="setup", conn_id=db,
            sql=[f"create table {table} (day text, model text, accuracy float)",
                 f"insert into {table} values ('2024-03-01', 'cnn', 0.9)",
                 f"insert into {table} values ('2024-03-01', 'mlp', 0.4)"])
        best = SQLExecuteQueryOperator(task_id="best", conn_id=db, sql="best.sql",
                                       parameters={"threshold": "{{ params.t }}"},
                                       params={"t": 0.8})
        setup >> best

    run = dag.test(LOGICAL)

    assert run.get_task_instance("setup").xcom_pull() is None
    best_ti = run.get_task_instance("best")
    assert best_ti.state == "success", best_ti.log
    assert best_ti.xcom_pull() == [["cnn"]]


def test_a_bad_statement_fails_the_task_naming_connection_and_statement(
        db: str, table: str) -> None:
    with DAG("sql_bad", start_date=LOGICAL) as dag:
        SQLExecuteQueryOperator(task_id="bad", conn_id=db,
                                sql=f"create table {table} (x int); select nope from {table}")

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("bad")
    assert ti.state == "failed"
    assert "HookError: connection 'warehouse' (" in ti.log
    assert f"select nope from {table}: " in ti.log
    # the statements ran in one transaction: the table created before the failure is gone
    assert not inspect(SqlHook(db).get_sqlalchemy_engine()).has_table(table)


def test_an_unknown_connection_fails_the_task_with_the_known_ids(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_WAREHOUSE", "sqlite://")
    with DAG("sql_noconn", start_date=LOGICAL) as dag:
        SQLExecuteQueryOperator(task_id="q", conn_id="warehose", sql="select 1")

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("q")
    assert ti.state == "failed"
    assert ("connection 'warehose' not found; known: ['warehouse']; did you mean 'warehouse'?"
            in ti.log)


def test_the_password_never_reaches_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"pw-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MLPIPE_CONN_PGDOWN", f"postgresql://etl:{secret}@127.0.0.1:9/dw")
    with DAG("sql_down", start_date=LOGICAL) as dag:
        SQLExecuteQueryOperator(task_id="q", conn_id="pgdown", sql="select 1")

    run = dag.test(LOGICAL)

    log = run.get_task_instance("q").log
    assert "ConnectionFailedError: connection 'pgdown' (postgresql://etl:***@127.0.0.1:9/dw)" \
        in log
    assert secret not in log
