"""A run whose driving command died does not stay ``running``: a scheduler ends it.

``mlpipe dags trigger --wait`` holds its run with a lease of ``MLPIPE_TASK_LEASE_S``,
renewed while it lives. Killed (SIGKILL, SIGTERM, or a task calling ``os._exit`` under the
sequential executor), it stops renewing: a scheduler takes the run over within one lease,
retries (or fails) the task whose heartbeat stopped, and the run ends normally.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags" / "crash"
LEASE = "2"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    marks = tmp_path / "marks"
    marks.mkdir()
    return {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS), "MLPIPE_EXECUTOR": "sequential",
            "MLPIPE_TASK_LEASE_S": LEASE, "CRASH_TEST_DIR": str(marks), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def scheduler(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], None]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        with open(tmp_path / "scheduler.err", "wb") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=err,
                                          stdin=subprocess.DEVNULL, start_new_session=True))

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def mlpipe_json(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "mlpipe", *args, "-o", "json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")


def run_state(env: dict[str, str], dag_id: str) -> str | None:
    runs = mlpipe_json(env, "dags", "list-runs", dag_id)
    return runs[0]["state"] if runs and runs[0]["state"] in ("success", "failed") else None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_killed_trigger_wait_is_taken_over_and_the_task_retried(
        sig: signal.Signals, env: dict[str, str], scheduler: Callable[[], None]) -> None:
    marks = Path(env["CRASH_TEST_DIR"])
    cli = subprocess.Popen([sys.executable, "-m", "mlpipe", "dags", "trigger", "crashy",
                            "--wait", "--run-id", "r1"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (marks / "slow-try-1").exists(), "try 1 to start")
    finally:
        os.killpg(cli.pid, sig)
        cli.wait(timeout=30)
    assert mlpipe_json(env, "dags", "list-runs", "crashy")[0]["state"] == "running"

    scheduler()

    assert wait_for(lambda: run_state(env, "crashy"), "the run to end") == "success"
    states = {t["task_id"]: t for t in mlpipe_json(env, "tasks", "states", "crashy", "r1")}
    assert (states["slow"]["state"], states["slow"]["try_number"]) == ("success", 2)
    assert states["after"]["state"] == "success"


@pytest.mark.slow
def test_a_task_that_exits_its_driving_process_fails_and_the_run_ends(
        env: dict[str, str], scheduler: Callable[[], None]) -> None:
    done = subprocess.run([sys.executable, "-m", "mlpipe", "dags", "trigger", "suicide",
                           "--wait", "--run-id", "r1"], env=env, capture_output=True,
                          timeout=60)
    assert done.returncode == 1  # the task's os._exit(1) ended the command

    scheduler()

    assert wait_for(lambda: run_state(env, "suicide"), "the run to end") == "failed"
    [die] = mlpipe_json(env, "tasks", "states", "suicide", "r1")
    assert (die["state"], die["try_number"]) == ("failed", 1)
