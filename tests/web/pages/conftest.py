"""One web server per test module on the ``pages_demo`` DAG (tests/dags/web) with one finished
run, and browser-like sessions (session cookie, CSRF token) of a viewer and an op.

The server is shared by the module's tests (starting one costs seconds: migrations and
argon2 hashes); a test that changes something makes its own run or puts things back.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mlpipe.scheduler.runs import record_dags
from mlpipe.scheduler.service import Engine
from mlpipe.settings import Settings, load_settings
from mlpipe.web.accounts import create_user
from mlpipe.web.sessions import COOKIE

DEMO_DAG = Path(__file__).resolve().parents[2] / "dags" / "web_pages" / "pages_demo.py"
SECRET = "s3cr3t-web-demo-password"
USERS = {"viewer": "viewer", "op": "op"}  # name -> role


class Browser(requests.Session):
    """A logged-in session as a browser holds it: the cookie, and the page's CSRF token."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.csrf = ""

    def page(self, path: str, **kwargs: Any) -> requests.Response:
        response = self.get(self.base + path, headers={"Accept": "text/html"},
                            allow_redirects=False, timeout=30, **kwargs)
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post_form(self, path: str, data: dict[str, str], *, csrf: bool = True,
                  htmx: bool = False) -> requests.Response:
        data = {**data, "csrf_token": self.csrf} if csrf and not htmx else dict(data)
        headers = {"Accept": "text/html"}
        if htmx:
            headers["HX-Request"] = "true"
            if csrf:
                headers["X-CSRF-Token"] = self.csrf
        return self.post(self.base + path, data=data, headers=headers, allow_redirects=False,
                         timeout=30)


@dataclass
class DemoSite:
    """The running server of the demo, its engine (same database) and settings."""

    url: str
    app: Any
    engine: Engine
    settings: Settings
    run_id: str

    def session(self, name: str) -> Browser:
        """A session of user ``name`` with the cookie ``POST /login`` would set, minted by
        the server's own session codec (the login form is driven by the browser test)."""
        ctx = self.app.state.ctx
        record = ctx.store.get_user(name)
        value, _ = ctx.sessions.dumps(record.name, record.password_hash)
        browser = Browser(self.url)
        browser.cookies.set(COOKIE, value, domain="127.0.0.1", path="/")
        browser.page("/dags")
        assert browser.csrf
        return browser

    def new_run(self, **conf: Any) -> str:
        """A new finished run of ``pages_demo`` (for tests that change a run)."""
        dag = self.engine.get_dag("pages_demo")
        record = self.engine.trigger(dag, conf=conf or {"epochs": 3})
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLPIPE_CONN_WEB_SECRET", f"http://user:{SECRET}@example.invalid")
            run = self.engine.run(dag, record.run_id)
        assert run.state == "success", [(t.task_id, t.state) for t in run.task_instances]
        return record.run_id


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    """``app`` under a real uvicorn server on a free loopback port, once it is listening."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    from mlpipe.web.app import create_app

    root = tmp_path_factory.mktemp("pages_demo")
    (root / "dags").mkdir()
    shutil.copy(DEMO_DAG, root / "dags" / DEMO_DAG.name)
    settings = load_settings(home=root / "home", dags_folder=root / "dags",
                             executor="sequential")
    engine = Engine.from_settings(settings)
    record_dags(engine.store, [engine.get_dag("pages_demo")], paused_by_default=False)
    app = create_app(settings)
    for name, role in USERS.items():
        create_user(app.state.store, name, role, f"{name}-password")
    url, server, thread = serve(app)
    site = DemoSite(url, app, engine, settings, "")
    site.run_id = site.new_run()
    yield site
    server.should_exit = True
    thread.join(timeout=10)
    engine.store.dispose()


@pytest.fixture
def demo_secret() -> str:
    """The password of the ``web_secret`` connection the demo's first task prints."""
    return SECRET


@pytest.fixture
def browser_as(demo_site: DemoSite) -> Callable[[str], Browser]:
    """``browser_as("op")``: a logged-in browser session of that user."""
    return demo_site.session
