"""Secrets stores on SQLite and PostgreSQL, Fernet keys, and secrets no other test uses.

PostgreSQL is ``MLPIPE_TEST_POSTGRES_URL`` (default: the local ``test`` database, trust auth);
the suite migrates a scratch database of its own once and empties its two tables per test.
Without a server the PostgreSQL half is skipped (a failure on CI).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mlpipe.connections import generate_key
from mlpipe.connections.metastore_backend import SecretsStore
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore


@pytest.fixture(scope="session")
def postgres_metadata(postgres_databases: Callable[[], str]) -> Iterator[MetadataStore]:
    """A migrated metadata store in a scratch PostgreSQL database, dropped at the end."""
    store = MetadataStore.open(postgres_databases())
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The engine of an empty, migrated metadata database (a SQLite file or PostgreSQL)."""
    if request.param == "sqlite":
        store = MetadataStore.open(f"sqlite:///{tmp_path / 'secrets.db'}")
        yield store.engine
        store.dispose()
        return
    shared: MetadataStore = request.getfixturevalue("postgres_metadata")
    with shared.writer.begin() as conn:
        conn.execute(text("TRUNCATE connection, variable"))
    yield shared.engine


@pytest.fixture
def make_store(metadata_engine: Engine) -> Callable[..., SecretsStore]:
    """``make_store(fernet_key=None)``: the database seen with (or without) a key."""

    def make(fernet_key: str | None = None) -> SecretsStore:
        return SecretsStore(metadata_engine, fernet_key=fernet_key)

    return make


@pytest.fixture
def configured_store() -> Iterator[SecretsStore]:
    """The metadata DB the settings point at ($MLPIPE_HOME/mlpipe.db), migrated, no key."""
    metadata = MetadataStore.open(load_settings().database)
    yield SecretsStore(metadata.engine)
    metadata.dispose()


@pytest.fixture
def fernet_key() -> str:
    return generate_key()


@pytest.fixture
def secret() -> str:
    """A password no other test registers with the masker."""
    return f"pw-{uuid.uuid4().hex[:12]}"
