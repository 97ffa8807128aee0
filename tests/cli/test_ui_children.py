"""``mlpipe ui`` ends MLflow's whole process tree (server, uvicorn workers, job runner, huey
consumers) when it ends: on SIGTERM, SIGINT and even SIGKILL of ``mlpipe ui`` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from model_fixtures import MLPIPE, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def ended(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def poll(condition: object, what: str, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture
def started() -> Iterator[list[psutil.Process]]:
    """Every process the test saw; any still running at the end is killed."""
    seen: list[psutil.Process] = []
    yield seen
    for process in seen:
        if not ended(process):
            process.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_mlpipe_ui_leaves_no_process_behind(sig: signal.Signals, tmp_path: Path,
                                            started: list[psutil.Process]) -> None:
    port = free_port()
    env = {**os.environ, "MLPIPE_HOME": str(tmp_path / "home"),
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    ui = subprocess.Popen([MLPIPE, "ui", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(psutil.Process(ui.pid))

    def up() -> bool:
        assert ui.poll() is None, "mlpipe ui exited"
        started.extend(p for p in tree(ui.pid) if p not in started)
        names = " ".join(command(p) for p in tree(ui.pid))
        return "huey_consumer" in names and answers(f"http://127.0.0.1:{port}/health")

    poll(up, "the MLflow UI with its job runner did not start")
    started.extend(p for p in tree(ui.pid) if p not in started)
    children = [p for p in started if p.pid != ui.pid]
    # mlflow ui, uvicorn, job runner, huey consumers, watchdog: at least, not exactly, as
    # polling the tree may also catch short-lived helpers MLflow starts and ends
    assert len(children) >= 4

    os.kill(ui.pid, sig)
    ui.wait(timeout=60)
    poll(lambda: all(ended(p) for p in children),
         f"left running after {sig.name}: "
         f"{[command(p)[:80] for p in children if not ended(p)]}", 60)
    assert not answers(f"http://127.0.0.1:{port}/health")
