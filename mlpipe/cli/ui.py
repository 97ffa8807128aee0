"""``mlpipe ui``: the MLflow UI on the configured tracking store.

MLflow's server is a tree of processes (``mlflow ui``, uvicorn and its workers, the job
runner and its huey consumers). They all run in one new process group, which ends with
``mlpipe ui`` however it ends: on exit, SIGINT or SIGTERM it ends the group itself; for a
SIGKILL, a small watchdog process holding a pipe from ``mlpipe ui`` sees the pipe close and
ends the group (TERM, then KILL after ``GRACE_S``); ``mlflow ui`` itself also gets SIGTERM
from the kernel when its parent dies (``PR_SET_PDEATHSIG``, Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from mlpipe.cli.output import console, guarded
from mlpipe.errors import SettingsError
from mlpipe.executors.process_watch import load_prctl, set_parent_death_signal
from mlpipe.settings import load_settings

GRACE_S = 10.0

# Run as ``python -c WATCHDOG PGID GRACE_S`` with stdin a pipe from ``mlpipe ui``: EOF on
# stdin means ``mlpipe ui`` ended (exited or was killed); then the group is ended.
WATCHDOG = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
signal.signal(signal.SIGINT, signal.SIG_IGN)
while sys.stdin.buffer.read(65536):
    pass
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
deadline = time.monotonic() + grace
for sig in (signal.SIGTERM, signal.SIGKILL):
    if alive():
        os.killpg(pgid, sig)
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
"""


def die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM this child when ``parent`` dies (Linux), even if it already
    has. libc is loaded here, before the fork: the child only calls into it."""
    load_prctl()  # libc is loaded before the fork: the child only calls into it

    def preexec() -> None:
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_in_group(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` in a new process group that ends when this process ends; its exit code.

    SIGTERM and SIGINT (KeyboardInterrupt) of this process end the group first.
    """
    child = subprocess.Popen(argv, env=env, start_new_session=True,
                             preexec_fn=die_with(os.getpid()))
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(child.pid), str(GRACE_S)],
                                stdin=subprocess.PIPE, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        return child.wait()
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.close()  # the watchdog ends the group now
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            child.wait()  # reap it, so the watchdog sees the group empty
            watchdog.wait()
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@guarded
def ui(port: Annotated[int, typer.Option(help="0 picks a free port")] = 5000,
       host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the configured store (MLFLOW_TRACKING_URI or $MLPIPE_HOME)."""
    tracking = load_settings().tracking
    if tracking.tracking_uri.startswith(("http://", "https://")):
        console.print(f"MLflow runs on a tracking server: open {tracking.tracking_uri}")
        return
    if port == 0:
        port = free_port(host)
    bin_dir = Path(sys.executable).parent
    mlflow = bin_dir / "mlflow"
    if not mlflow.exists():
        raise SettingsError(f"the mlflow command is not installed next to {sys.executable}")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    console.print(f"MLflow UI for {tracking.tracking_uri}: http://{host}:{port}", markup=False)
    with contextlib.suppress(KeyboardInterrupt):
        run_in_group([str(mlflow), "ui", "--backend-store-uri", tracking.tracking_uri,
                      "--default-artifact-root", tracking.artifact_root,
                      "--host", host, "--port", str(port)], env)
