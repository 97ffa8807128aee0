"""Fixtures shared by every test: an isolated environment and MLPIPE_HOME per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from mlpipe.masking import secrets_masker

pytest_plugins = ["model_fixtures"]

# Read on import: the autouse ``isolated_env`` fixture removes MLPIPE_* before each test.
POSTGRES_URL = os.environ.get("MLPIPE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own MLPIPE_HOME, working directory and no stray MLPIPE_* settings."""
    for name in list(os.environ):
        if name.startswith(("MLPIPE_", "MLFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    home = tmp_path / "mlpipe_home"
    home.mkdir()
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    # Secrets one test registers stay its own: the masker is process-wide, and a short secret
    # left by another test (a session token "tok") would mask inside words of later logs.
    masker = secrets_masker()
    secrets, pattern = set(masker._secrets), masker._pattern
    yield home
    masker._secrets, masker._pattern = secrets, pattern


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An autocommit engine on the PostgreSQL server, for creating scratch databases.

    Skips when the server is unreachable, except on CI (``CI`` set), where it fails.
    """
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_databases(postgres_admin: Engine) -> Iterator[Callable[[], str]]:
    """``new()``: the URL of a fresh, empty database; all of them are dropped at the end."""
    created: list[str] = []

    def new() -> str:
        name = f"mlpipe_test_{uuid.uuid4().hex[:12]}"
        with postgres_admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return postgres_admin.url.set(database=name).render_as_string(hide_password=False)

    yield new
    with postgres_admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
