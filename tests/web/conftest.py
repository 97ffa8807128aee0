"""A real uvicorn server of ``create_app`` on 127.0.0.1 (port 0), users of each role, and an
HTTP client (``requests``) for the web tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mlpipe.settings import Settings, load_settings
from mlpipe.web.accounts import create_user, issue_token

PASSWORDS = {"viewer": "viewer-pass-1", "op": "op-pass-12", "admin": "admin-pass-1"}


@dataclass
class WebServer:
    """A running web server: its base URL, app, and the thread serving it."""

    url: str
    app: Any
    server: Any
    thread: threading.Thread
    tokens: dict[str, str]

    @property
    def store(self) -> Any:
        return self.app.state.store

    def get(self, path: str, role: str | None = "viewer", **kwargs: Any) -> requests.Response:
        return self.call("GET", path, role, **kwargs)

    def call(self, method: str, path: str, role: str | None = "viewer",
             **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(settings: Settings) -> WebServer:
    import uvicorn

    from mlpipe.web.app import create_app

    app = create_app(settings)
    tokens = {}
    for role, password in PASSWORDS.items():
        create_user(app.state.store, role, role, password)
        tokens[role] = issue_token(app.state.store, role)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return WebServer(f"http://127.0.0.1:{port}", app, server, thread, tokens)


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    return folder


@pytest.fixture
def web_settings(isolated_env: Path, dags_folder: Path) -> Settings:
    return load_settings(dags_folder=dags_folder, executor="sequential")


@pytest.fixture
def web(web_settings: Settings) -> Iterator[WebServer]:
    server = start_server(web_settings)
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
