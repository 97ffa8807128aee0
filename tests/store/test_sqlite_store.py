"""What the SQLite backend adds: WAL journaling, enforced foreign keys, locking writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mlpipe.errors import StoreError
from mlpipe.store import database
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore

WHEN = datetime(2024, 1, 31, tzinfo=UTC)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield store
    store.dispose()


def pragma(store: MetadataStore, name: str) -> object:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_the_database_file_is_in_wal_mode(sqlite_store: MetadataStore, tmp_path: Path) -> None:
    assert pragma(sqlite_store, "journal_mode") == "wal"
    assert (tmp_path / "metadata.db").is_file()
    assert (tmp_path / "metadata.db-wal").exists()


def test_every_connection_enforces_foreign_keys_and_waits_for_locks(
        sqlite_store: MetadataStore) -> None:
    assert pragma(sqlite_store, "foreign_keys") == 1
    assert pragma(sqlite_store, "busy_timeout") == 30000


def test_task_instances_of_an_unknown_run_are_refused(sqlite_store: MetadataStore) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        sqlite_store.add_tis("etl", "no_such_run", [("extract", -1, "PythonOperator", 0)])


def test_a_missing_parent_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'nested' / 'metadata.db'}"

    store = MetadataStore.open(url)

    assert database.is_current(store.engine)
    assert (tmp_path / "home" / "nested" / "metadata.db").is_file()
    store.dispose()


def test_an_in_memory_store_works_across_threads() -> None:
    store = MetadataStore.open("sqlite://")
    record = DagRunRecord("etl", "r1", "manual", WHEN, WHEN, WHEN, {}, "queued", WHEN,
                          None, None)
    store.create_run(record, [("extract", -1, "PythonOperator", 0)])
    seen: list[int] = []

    thread = threading.Thread(target=lambda: seen.append(len(store.list_tis("etl", "r1"))))
    thread.start()
    thread.join()

    assert seen == [1]
    store.dispose()


def test_a_reader_does_not_block_a_writer(sqlite_store: MetadataStore) -> None:
    sqlite_store.sync_dags({"etl": "etl.py"})

    with sqlite_store.engine.connect() as reader:
        reader.execute(text("SELECT * FROM dag")).all()  # an open read transaction
        sqlite_store.set_paused("etl", True)  # WAL: commits without waiting for the reader

    dag = sqlite_store.get_dag("etl")
    assert dag is not None and dag.is_paused


def _run_with_one_instance(store: MetadataStore) -> TIKey:
    store.create_run(DagRunRecord("etl", "r1", "manual", WHEN, WHEN, WHEN, {}, "queued", WHEN,
                                  None, None), [("extract", -1, "PythonOperator", 0)])
    return TIKey("etl", "r1", "extract", -1)


def test_a_nested_write_on_one_thread_fails_at_once_and_the_outer_one_commits(
        sqlite_store: MetadataStore) -> None:
    key = _run_with_one_instance(sqlite_store)

    with sqlite_store.transaction() as conn:
        assert sqlite_store.queue(key, ["none"], conn=conn) == "queued"
        with pytest.raises(StoreError, match="already open on this thread"):
            sqlite_store.transition(key, ["queued"], "scheduled")  # would wait 30 s on the lock

    assert [t.to_state for t in sqlite_store.transitions("etl", "r1")] == ["queued"]


def test_a_failed_write_is_rolled_back_and_the_next_one_works(
        sqlite_store: MetadataStore) -> None:
    key = _run_with_one_instance(sqlite_store)

    with pytest.raises(IntegrityError), sqlite_store.transaction() as conn:
        assert sqlite_store.queue(key, ["none"], conn=conn) == "queued"
        sqlite_store.push_xcoms(TIKey("etl", "no_such_run", "extract", -1), {"k": "1"}, conn)

    assert sqlite_store.ti_states("etl", "r1") == [("extract", -1, "none")]
    assert sqlite_store.queue(key, ["none"]) == "queued"
    assert sqlite_store.ti_states("etl", "r1") == [("extract", -1, "queued")]
