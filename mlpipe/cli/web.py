"""``mlpipe webserver`` (the web UI and REST API) and ``mlpipe standalone`` (everything a
laptop needs in one command: scheduler, web server and MLflow UI as child processes).

``standalone`` starts each child in its own process group with ``PR_SET_PDEATHSIG``; on
SIGINT or SIGTERM (or when one child ends) it sends SIGTERM to every group, waits
``GRACE_S`` and sends SIGKILL to whatever is left, so no child outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Annotated

import typer

from mlpipe.cli.output import console, guarded
from mlpipe.cli.ui import die_with, free_port
from mlpipe.settings import Settings, load_settings

GRACE_S = 20.0
ADMIN = "admin"


def _prepare(settings: Settings) -> None:
    """Migrate the database and make the session key before any worker starts."""
    from mlpipe.web.context import WebContext

    WebContext.from_settings(settings).store.dispose()


@guarded
def webserver(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 picks a free one)")
                    ] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the web UI and the REST API (/api/v1) until SIGTERM or Ctrl-C."""
    import uvicorn

    settings = load_settings()
    _prepare(settings)
    if port == 0:
        port = free_port(host)
    console.print(f"mlpipe web server: http://{host}:{port} (API: /api/v1, metrics: /metrics)",
                  markup=False)
    uvicorn.run("mlpipe.web.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning", proxy_headers=True)


def ensure_admin(settings: Settings) -> str | None:
    """Create the ``admin`` user with a generated password (returned, to be shown once);
    None when it exists already."""
    from mlpipe.scheduler.service import Engine
    from mlpipe.web.accounts import create_user
    from mlpipe.web.passwords import generate_password

    engine = Engine.from_settings(settings)
    try:
        if engine.store.get_user(ADMIN) is not None:
            return None
        password = generate_password()
        create_user(engine.store, ADMIN, "admin", password)
        return password
    finally:
        engine.store.dispose()


class Children:
    """Child processes, each in its own process group, ended together."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.procs[name] = subprocess.Popen(argv, env=env, start_new_session=True,
                                            preexec_fn=die_with(os.getpid()))

    def first_ended(self) -> str | None:
        return next((n for n, p in self.procs.items() if p.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM every group, then SIGKILL what is left after ``GRACE_S``."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline and \
                    any(p.poll() is None or _group_alive(p.pid) for p in self.procs.values()):
                time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _stop_on(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@guarded
def standalone(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Web server port (0: free)")
                    ] = 8080,
    ui_port: Annotated[int, typer.Option("--ui-port", min=0, max=65535,
                                         help="MLflow UI port (0: free)")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
) -> None:
    """Scheduler (local executor), web server and MLflow UI together, until Ctrl-C."""
    settings = load_settings()
    _prepare(settings)
    password = ensure_admin(settings)
    port = port or free_port(host)
    ui_port = ui_port or free_port(host)
    env = {**os.environ, "MLPIPE_EXECUTOR": "local", "MLFLOW_DISABLE_TELEMETRY": "true"}
    mlpipe = [sys.executable, "-m", "mlpipe"]
    children = Children()
    previous = signal.signal(signal.SIGTERM, _stop_on)
    try:
        children.start("scheduler", [*mlpipe, "scheduler", "--grace-period", "10"], env)
        children.start("webserver", [*mlpipe, "webserver", "--host", host, "--port",
                                     str(port)],
                       {**env, "MLPIPE_MLFLOW_UI_URL": f"http://{host}:{ui_port}"})
        children.start("ui", [*mlpipe, "ui", "--host", host, "--port", str(ui_port)], env)
        console.print(f"web UI:    http://{host}:{port}\nMLflow UI: http://{host}:{ui_port}",
                      markup=False)
        if password is not None:
            console.print(f"log in as {ADMIN} with password: {password}\n(shown once; it is "
                          "stored hashed)", markup=False)
        else:
            console.print(f"log in as {ADMIN} (its password was shown when it was created)",
                          markup=False)
        sys.stdout.flush()
        while (ended := children.first_ended()) is None:
            time.sleep(0.2)
        console.print(f"{ended} ended; stopping the others", markup=False)
    except KeyboardInterrupt:
        console.print("stopping...", markup=False)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        children.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
