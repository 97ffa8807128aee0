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


GAPS_DAGS = Path(__file__).resolve().parents[2] / "dags" / "web_gaps" / "gaps_demo.py"


@dataclass
class GapsSite:
    """A server over ``gaps_demo`` with remote logs under a ``file://`` root: an ingest run
    whose local log was deleted, dataset events (one from a task, one S3-prefix change),
    the dataset-triggered run they made, and a rescheduled sensor past its SLA."""

    url: str
    app: Any
    engine: Engine
    settings: Settings
    ingest_run: str
    train_run: str
    sensor_run: str
    token: str

    def session(self, name: str) -> Browser:
        return DemoSite.session(self, name)  # type: ignore[arg-type]

    def api(self, path: str, **headers: str) -> requests.Response:
        return requests.get(self.url + path, timeout=30, allow_redirects=False,
                            headers={"Authorization": f"Bearer {self.token}", **headers})


@pytest.fixture(scope="module")
def gaps_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GapsSite]:
    from datetime import UTC, datetime, timedelta

    from mlpipe.scheduler.dataset_triggers import (
        create_dataset_runs,
        record_dataset_references,
    )
    from mlpipe.scheduler.scheduler_job import Scheduler
    from mlpipe.web.accounts import issue_token
    from mlpipe.web.app import create_app

    root = tmp_path_factory.mktemp("gaps")
    (root / "dags").mkdir()
    shutil.copy(GAPS_DAGS, root / "dags" / GAPS_DAGS.name)
    settings = load_settings(home=root / "home", dags_folder=root / "dags", executor="local",
                             parallelism=2, task_lease_s=5,
                             remote_log_uri=(root / "remote_logs").as_uri())
    engine = Engine.from_settings(settings)
    dags = [engine.get_dag(d) for d in ("gaps_ingest", "gaps_train", "gaps_sensor")]
    record_dags(engine.store, dags, paused_by_default=False)
    record_dataset_references(engine.store, dags)
    # a task's outlet: one event of s3://lake/raw/, and the try's log shipped remotely
    ingest = engine.trigger(dags[0]).run_id
    assert engine.run(dags[0], ingest).state == "success"
    # a change under the S3 prefix, as the scheduler's poller records it
    start = datetime.now(UTC)
    engine.store.apply_listing("s3://lake/labels/", {}, {"a.png": ("e1", 1)}, listed_at=start)
    engine.store.apply_listing("s3://lake/labels/", {}, {"a.png": ("e1", 1),
                                                          "cats/b.png": ("e2", 2)},
                               listed_at=start + timedelta(seconds=1))
    [train] = create_dataset_runs(engine.store, [dags[1]], set())
    sensor = engine.trigger(dags[2]).run_id

    def sensor_waits_past_its_sla(_: Scheduler) -> bool:
        [wait] = engine.store.list_tis("gaps_sensor", sensor)
        return wait.state == "up_for_reschedule" and bool(
            engine.store.list_sla_misses("gaps_sensor"))

    Scheduler(engine, scan_interval=0.2).run(until=sensor_waits_past_its_sla)
    app = create_app(settings)
    for name, role in USERS.items():
        create_user(app.state.store, name, role, f"{name}-password")
    url, server, thread = serve(app)
    yield GapsSite(url, app, engine, settings, ingest, train.run_id, sensor,
                   issue_token(app.state.store, "viewer"))
    server.should_exit = True
    thread.join(timeout=10)
    engine.store.dispose()
