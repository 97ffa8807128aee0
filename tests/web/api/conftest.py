"""Fixtures of the API tests: a DAGs folder, settings, and a served app per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_support import WebServer, add_users, start_server

from mlpipe.settings import Settings, load_settings


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    return folder


@pytest.fixture
def web_settings(isolated_env: Path, dags_folder: Path) -> Settings:
    return load_settings(dags_folder=dags_folder, executor="sequential")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A migrated SQLite metadata DB with the users, made once and copied into each test's
    home (migrating and hashing three passwords per test would dominate the tests' time)."""
    from mlpipe.store.metadata_store import MetadataStore

    path = tmp_path_factory.mktemp("web_template") / "mlpipe.db"
    store = MetadataStore.open(f"sqlite:///{path}")
    tokens = add_users(store)
    store.dispose()
    return path, tokens


@pytest.fixture
def web(web_settings: Settings, template_db: tuple[Path, dict[str, str]]
        ) -> Iterator[WebServer]:
    template, tokens = template_db
    shutil.copy(template, web_settings.home / "mlpipe.db")
    server = start_server(web_settings, tokens)
    yield server
    server.stop()


@pytest.fixture
def make_web() -> Iterator[Callable[[Settings], WebServer]]:
    started: list[WebServer] = []

    def make(settings: Settings) -> WebServer:
        started.append(start_server(settings))
        return started[-1]

    yield make
    for server in started:
        server.stop()
