"""Steering runs by hand through the CLI while a real scheduler drives them.

``tasks clear`` of a running instance stops it (the try notices at its heartbeat) and runs it
again; ``dags set-state`` ends a wedged run; ``tasks set-state`` reopens a failed run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from test_crash_recovery import mlpipe_json, run_state, wait_for

from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore

DAGS = Path(__file__).resolve().parents[1] / "dags" / "crash"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    marks = tmp_path / "marks"
    marks.mkdir()
    return {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS), "MLPIPE_EXECUTOR": "local",
            "MLPIPE_TASK_LEASE_S": "2", "CRASH_TEST_DIR": str(marks)}


@pytest.fixture
def scheduler(env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    with open(tmp_path / "scheduler.err", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler"], env=env,
                                stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    yield
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def started(env: dict[str, str], name: str) -> Callable[[], int | None]:
    mark = Path(env["CRASH_TEST_DIR"]) / name
    return lambda: int(mark.read_text()) if mark.exists() and mark.read_text() else None


@pytest.mark.slow
def test_clearing_a_running_task_stops_it_and_runs_it_again(
        env: dict[str, str], scheduler: None) -> None:
    assert cli(env, "dags", "trigger", "crashy", "--no-wait", "--run-id", "r1").returncode == 0
    pid = wait_for(started(env, "slow-try-1"), "try 1 to start")

    refused = cli(env, "tasks", "clear", "crashy", "-t", "^slow$", "-r", "r1")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: 1 instance(s) are running or queued (slow of r1 "
                                      "(running)): pass --yes to stop and clear them")
    assert psutil.pid_exists(pid)

    done = cli(env, "tasks", "clear", "crashy", "-t", "^slow$", "-r", "r1", "--yes")
    assert done.returncode == 0, done.stderr
    assert "cleared 1 task instance(s)" in done.stdout  # its downstream had not run yet
    # stopped either way; whether its parent has reaped it yet is a race: gone or zombie
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    assert wait_for(lambda: run_state(env, "crashy"), "the run to end") == "success"
    states = {t["task_id"]: t for t in mlpipe_json(env, "tasks", "states", "crashy", "r1")}
    assert states["slow"]["state"] == "success" and states["slow"]["try_number"] == 2


@pytest.mark.slow
def test_marking_a_wedged_run_failed_ends_it_and_its_task(
        env: dict[str, str], scheduler: None) -> None:
    assert cli(env, "dags", "trigger", "wedge", "--no-wait", "--run-id", "r1").returncode == 0
    pid = wait_for(started(env, "forever"), "the task to start")

    done = cli(env, "dags", "set-state", "wedge", "r1", "failed")
    assert done.returncode == 0, done.stderr
    assert "run r1 of wedge marked failed; 2 unfinished task instance(s) changed" in done.stdout

    wait_for(lambda: not psutil.pid_exists(pid)
             or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, "the try to stop")
    states = {t["task_id"]: t["state"] for t in mlpipe_json(env, "tasks", "states", "wedge",
                                                             "r1")}
    assert states == {"forever": "failed", "next_step": "skipped"}
    assert mlpipe_json(env, "dags", "list-runs", "wedge")[0]["state"] == "failed"
    bad = cli(env, "dags", "set-state", "wedge", "r1", "bogus")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: a run can be marked ['failed', 'success'], not 'bogus'"


@pytest.mark.slow
def test_setting_a_failed_task_to_success_reopens_the_run(
        env: dict[str, str], scheduler: None) -> None:
    assert cli(env, "dags", "trigger", "boom", "--no-wait", "--run-id", "r1").returncode == 0
    assert wait_for(lambda: run_state(env, "boom"), "the run to fail") == "failed"

    done = cli(env, "tasks", "set-state", "boom", "r1", "explode", "success")
    assert done.returncode == 0, done.stderr
    assert "explode" in done.stdout and "failed -> success" in done.stdout

    assert wait_for(lambda: run_state(env, "boom"), "the run to end again") == "success"
    states = {t["task_id"]: t["state"] for t in mlpipe_json(env, "tasks", "states", "boom",
                                                             "r1")}
    assert states == {"explode": "success", "downstream": "success"}


@pytest.mark.slow
def test_tasks_logs_follow_prints_until_the_try_ends(env: dict[str, str], tmp_path: Path,
                                                     scheduler: None) -> None:
    assert cli(env, "dags", "trigger", "wedge", "--no-wait", "--run-id", "r1").returncode == 0
    wait_for(started(env, "forever"), "the task to start")
    out = tmp_path / "follow.out"
    with open(out, "w") as sink:
        follower = subprocess.Popen([sys.executable, "-m", "mlpipe", "tasks", "logs", "wedge",
                                     "forever", "r1", "-f"], env=env, stdout=sink,
                                    stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: "Running" in out.read_text() or "forever" in out.read_text(),
             "the log so far")
    assert follower.poll() is None  # still following the running try

    assert cli(env, "tasks", "set-state", "wedge", "r1", "forever", "failed").returncode == 0
    assert follower.wait(timeout=60) == 0
    assert "forever" in out.read_text()


def test_tasks_run_uses_the_configured_artifact_root(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    root = (tmp_path / "artifacts").as_uri() + "/"
    env = {**env, "MLPIPE_ARTIFACT_ROOT": root, "MLPIPE_EXECUTOR": "sequential"}
    assert cli(env, "dags", "trigger", "writer", "--no-wait", "--run-id", "r1").returncode == 0

    done = cli(env, "tasks", "run", "writer", "write", "r1")

    assert done.returncode == 0, done.stderr
    [ti] = mlpipe_json(env, "tasks", "states", "writer", "r1")
    assert ti["state"] == "success"
    store = MetadataStore.open(load_settings().database)
    try:
        [value] = store.get_xcoms("writer", "r1", "write", "return_value", [-1]).values()
    finally:
        store.dispose()
    assert json.loads(value).startswith(root + "writer/r1/write")
