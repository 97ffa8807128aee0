"""A real uvicorn server of ``create_app`` on 127.0.0.1 (port 0) with a user of each role, and
an HTTP client (``requests``) for it: what the API tests share."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from mlpipe.settings import Settings
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


def add_users(store: Any) -> dict[str, str]:
    """A user of each role (named after it) and a token for each: role -> token."""
    tokens = {}
    for role, password in PASSWORDS.items():
        create_user(store, role, role, password)
        tokens[role] = issue_token(store, role)
    return tokens


def start_server(settings: Settings, tokens: dict[str, str] | None = None) -> WebServer:
    """Serve ``create_app(settings)``; with no ``tokens``, add the users first."""
    import uvicorn

    from mlpipe.web.app import create_app

    app = create_app(settings)
    if tokens is None:
        tokens = add_users(app.state.store)
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
