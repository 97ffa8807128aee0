"""Metadata stores on every backend: a SQLite file per test and one PostgreSQL database.

PostgreSQL is the server at ``MLPIPE_TEST_POSTGRES_URL`` (default: the local ``test``
database with trust auth, as on CI). The suite works in a scratch database of its own,
``mlpipe_test_<random>``, created for the session, migrated once, truncated before each test
and dropped at the end, so parallel runs never share rows. Without a reachable server the
PostgreSQL half is skipped, except on CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mlpipe.store.entities import DagRunRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.store.rows import Base

BACKENDS = ["sqlite", "postgresql"]

#: a logical date with microseconds, so a store that drops them is caught
LOGICAL_DATE = datetime(2024, 1, 31, 2, 0, 0, 123456, tzinfo=UTC)
#: ``(task_id, map_index)`` of the default run: three plain tasks and one unexpanded mapped one
TASKS = (("extract", -1), ("transform", -1), ("load", -1), ("fan", -1))


@pytest.fixture(scope="session")
def postgres_store(postgres_databases: Callable[[], str]) -> Iterator[MetadataStore]:
    """One migrated PostgreSQL store for the whole session."""
    store = MetadataStore.open(postgres_databases())
    yield store
    store.dispose()


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database without any table (never migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    new: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return new()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """A migrated store with no rows: a new SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        fresh = MetadataStore.open(f"sqlite:///{tmp_path / 'metadata.db'}")
        yield fresh
        fresh.dispose()
        return
    shared: MetadataStore = request.getfixturevalue("postgres_store")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with shared.writer.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    yield shared


@pytest.fixture
def store_url(store: MetadataStore) -> str:
    """The URL of ``store``, for opening it again from another thread or process."""
    return store.engine.url.render_as_string(hide_password=False)


def _run_record(dag_id: str, run_id: str, **overrides: Any) -> DagRunRecord:
    values: dict[str, Any] = {
        "dag_id": dag_id, "run_id": run_id, "run_type": "manual",
        "logical_date": LOGICAL_DATE, "data_interval_start": LOGICAL_DATE,
        "data_interval_end": LOGICAL_DATE, "conf": {}, "state": "queued",
        "created_at": LOGICAL_DATE, "start_date": None, "end_date": None,
    }
    return DagRunRecord(**{**values, **overrides})


@pytest.fixture
def make_run(store: MetadataStore) -> Callable[..., DagRunRecord]:
    """``make_run(dag_id, run_id, tasks=..., **record_fields)``: a run with task instances.

    Every instance gets operator ``PythonOperator`` and ``max_tries`` 1.
    """

    def make(dag_id: str = "etl", run_id: str = "manual__1", *,
             tasks: Sequence[tuple[str, int]] = TASKS, **overrides: Any) -> DagRunRecord:
        record = _run_record(dag_id, run_id, **overrides)
        return store.create_run(record, [(t, m, "PythonOperator", 1) for t, m in tasks])

    return make


@pytest.fixture
def run(make_run: Callable[..., DagRunRecord]) -> DagRunRecord:
    """Run ``etl/manual__1`` with instances extract, transform, load and fan (unexpanded)."""
    return make_run()


@pytest.fixture
def move(store: MetadataStore) -> Callable[..., None]:
    """``move(key, state, **values)``: put an instance into ``state`` from wherever it is."""

    def to(key: TIKey, state: str, **values: Any) -> None:
        record = store.get_ti(key)
        assert record is not None, f"no task instance {key}"
        assert store.transition(key, [record.state], state, **values)

    return to
