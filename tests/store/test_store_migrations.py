"""Creating and upgrading the schema (``mlpipe.store.database``) and opening a store."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from mlpipe.errors import StoreError
from mlpipe.store import database
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.store.rows import Base

TABLES = {"api_token", "artifact", "artifact_input", "connection", "dag", "dag_run",
          "import_error", "pool", "sla_misses", "state_transition", "task_instance", "variable",
          "web_user", "xcom",
          "dataset", "dataset_event", "dataset_object", "dataset_reference", "dataset_watermark",
          "dag_file"}


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    """An engine on a database that has never been migrated."""
    made = database.make_engine(empty_url)
    yield made
    made.dispose()


def test_an_empty_database_has_no_revision_and_is_not_current(engine: Engine) -> None:
    assert database.current_revision(engine) is None
    assert not database.is_current(engine)
    assert not database.has_tables(engine)


def test_migrate_creates_every_table_at_the_head_revision(engine: Engine) -> None:
    head = database.head_revision()

    assert database.migrate(engine) == head

    assert database.current_revision(engine) == head
    assert database.is_current(engine)
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}


def test_migrate_twice_changes_nothing(engine: Engine) -> None:
    database.migrate(engine)

    assert database.migrate(engine) == database.head_revision()
    assert database.is_current(engine)


def test_migrations_build_exactly_the_schema_of_the_rows(engine: Engine) -> None:
    database.migrate(engine)

    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    assert differences == []


def test_reset_drops_every_row_and_leaves_the_schema_current(empty_url: str) -> None:
    store = MetadataStore.open(empty_url)
    store.sync_dags({"etl": "etl.py"})
    store.replace_import_errors({"broken.py": "SyntaxError"})

    database.reset(store.engine)

    assert store.list_dags() == []
    assert store.import_errors() == {}
    assert database.is_current(store.engine)
    store.dispose()


def test_open_migrates_an_empty_database(empty_url: str) -> None:
    store = MetadataStore.open(empty_url)

    assert database.current_revision(store.engine) == database.head_revision()
    assert store.list_runs() == []
    store.dispose()


def test_open_without_migrate_refuses_an_empty_database(empty_url: str) -> None:
    with pytest.raises(StoreError, match=r"not migrated; run 'mlpipe db migrate'"):
        MetadataStore.open(empty_url, migrate=False)


def test_open_without_migrate_accepts_a_current_database(engine: Engine,
                                                         empty_url: str) -> None:
    database.migrate(engine)

    store = MetadataStore.open(empty_url, migrate=False)

    assert store.list_dags() == []
    store.dispose()


@pytest.mark.parametrize("url", ["nosuchdb://x", "not a url"])
def test_an_unusable_url_is_named_in_the_error(url: str) -> None:
    with pytest.raises(StoreError, match=f"cannot use database URL '{url}'"):
        MetadataStore.open(url)


def test_an_unreachable_server_is_a_store_error() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1

    with pytest.raises(StoreError, match=r"cannot reach the metadata database"):
        MetadataStore.open(url)


def test_a_sqlite_path_with_a_percent_sign_can_be_migrated(tmp_path: Path) -> None:
    # '%' is legal in file names and in URL-quoted passwords and query options.
    url = f"sqlite:///{tmp_path / '100%' / 'metadata.db'}"

    store = MetadataStore.open(url)

    assert database.is_current(store.engine)
    store.dispose()


def test_a_postgres_search_path_option_in_the_url_puts_the_tables_there(
        postgres_databases: Callable[[], str]) -> None:
    url = postgres_databases()
    schema = f"mlpipe_test_{uuid.uuid4().hex[:8]}"
    admin = database.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()

    store = MetadataStore.open(f"{url}?options=-csearch_path%3D{schema}")

    tables = inspect(store.engine)
    assert set(tables.get_table_names(schema=schema)) == TABLES | {"alembic_version"}
    assert tables.get_table_names(schema="public") == []
    store.dispose()


def test_the_active_index_migration_goes_down_and_up_again(engine: Engine) -> None:
    from alembic import command

    database.migrate(engine)
    with engine.begin() as conn:
        config = database._alembic_config(engine, conn)
        command.downgrade(config, "0005")
        down = {ix["name"] for ix in inspect(conn).get_indexes("task_instance")}
        command.upgrade(config, "head")
        up = {ix["name"] for ix in inspect(conn).get_indexes("task_instance")}

    assert {"ix_task_instance_state", "ix_task_instance_dag_state",
            "ix_task_instance_pool_state"} <= down and "ix_task_instance_active" not in down
    assert "ix_task_instance_active" in up and "ix_task_instance_state" not in up
    assert database.is_current(engine)


def test_the_queueing_gates_count_through_the_partial_index(tmp_path: Path) -> None:
    from mlpipe.store import hot_sql

    store = MetadataStore.open(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        for sql, params in [(hot_sql.DAG_USED.sql, {"dag_id": "d"}),
                            (hot_sql.POOL_USED.sql, {"pool": "p"})]:
            plan = dbapi.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            assert "ix_task_instance_active" in str(plan), (sql, plan)
    store.dispose()
