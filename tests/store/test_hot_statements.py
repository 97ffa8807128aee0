"""The per-task statements (``hot_sql``) write what SQLAlchemy writes, and fail the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from mlpipe.store import database
from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.hot_sql import INSERT_TRANSITION, UPSERT_XCOM
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.store.rows import UTCDateTime
from mlpipe.store.scratch import open_scratch_store, schema_image

WHEN = datetime(2024, 1, 31, 2, 0, 0, tzinfo=UTC)  # no microseconds: the format must keep them
KEY = TIKey("d", "r", "t", -1)


def _store_with_run(store: MetadataStore) -> MetadataStore:
    store.create_run(DagRunRecord("d", "r", "manual", WHEN, WHEN, WHEN, {}, "running", WHEN,
                                  None, None), [("t", -1, "PythonOperator", 0)])
    return store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> MetadataStore:
    return _store_with_run(MetadataStore.open(f"sqlite:///{tmp_path / 'm.db'}"))


def test_a_claimed_start_date_is_stored_as_sqlalchemy_stores_a_datetime(
        sqlite_store: MetadataStore) -> None:
    sqlite_store.set_run_state("d", "r", "running", start_date=WHEN)  # SQLAlchemy Core
    assert sqlite_store.queue(KEY, ["none"]) == "queued"
    sqlite_store.claim(KEY, start_date=WHEN, pid=1, hostname="h")  # the hot path
    with sqlite_store.engine.connect() as conn:
        by_core = conn.execute(text("SELECT start_date FROM dag_run")).scalar_one()
        by_hot = conn.execute(text("SELECT start_date FROM task_instance")).scalar_one()
        at = conn.execute(text("SELECT at FROM state_transition ORDER BY id DESC")).first()
    assert by_hot == by_core == "2024-01-31 02:00:00.000000"
    assert at is not None and at[0] == by_core
    record = sqlite_store.get_ti(KEY)
    assert record is not None and record.start_date == WHEN


def test_a_failing_hot_statement_raises_the_sqlalchemy_error(
        sqlite_store: MetadataStore) -> None:
    with sqlite_store.transaction() as conn, pytest.raises(IntegrityError):
        UPSERT_XCOM.run(conn, {**KEY._asdict(), "key": "k", "value": None})


def test_statements_in_one_transaction_commit_together_or_not_at_all(
        sqlite_store: MetadataStore) -> None:
    with pytest.raises(RuntimeError), sqlite_store.transaction() as conn:
        assert sqlite_store.queue(KEY, ["none"], conn=conn) == "queued"
        raise RuntimeError("rolled back")
    record = sqlite_store.get_ti(KEY)
    assert record is not None and record.state == "none"
    assert sqlite_store.transitions("d", "r") == []


def test_a_scratch_store_is_empty_and_at_the_head_revision(tmp_path: Path) -> None:
    first = _store_with_run(open_scratch_store(tmp_path / "a" / "m.db"))
    second = open_scratch_store(tmp_path / "b" / "m.db")
    assert database.is_current(second.engine)
    assert first.list_runs() != [] and second.list_runs() == []
    assert schema_image() == schema_image()  # made once


def test_a_scratch_store_never_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_text("keep me")
    with pytest.raises(FileExistsError):
        open_scratch_store(path)
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("value", [
    WHEN, datetime(2024, 1, 31, 2, 0, 0, 123456, tzinfo=UTC),
    datetime(2024, 3, 31, 1, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2024, 1, 1, 12, 0), None,
])
def test_datetimes_are_bound_exactly_as_sqlalchemy_binds_them(value: datetime | None) -> None:
    dialect = sqlite.dialect()
    expected = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(value)
    bound = INSERT_TRANSITION._bind(dialect, {"at": value})
    assert bound["at"] == expected
