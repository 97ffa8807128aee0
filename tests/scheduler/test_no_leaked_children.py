"""The local executor leaves no child behind: not on shutdown, not when SIGKILLed.

Idle pool workers (and standby children) die with the scheduler; a try that was running
outlives a killed scheduler on purpose (the next one adopts it through its heartbeat).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from scheduler_procs import SchedulerLauncher, scheduler_env, wait_until

DAG_FILE = """
import os, time
from pathlib import Path
from mlpipe import DAG, task

with DAG("sleepy") as dag:
    @task
    def nap():
        Path(os.environ["NAP_MARK"]).write_text(str(os.getpid()))
        time.sleep(600)

    @task
    def quick():
        return "done"

    nap()
    quick()  # its worker is idle once it is done
"""


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "sleepy.py").write_text(DAG_FILE)
    return folder


def _state(home: Path, task_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(home / "mlpipe.db", timeout=30)) as db:
        row = db.execute("SELECT state FROM task_instance WHERE task_id = ?",
                         (task_id,)).fetchone()
    return row[0] if row else None


def _standbys(proc: psutil.Process, task_pid: int) -> list[psutil.Process]:
    return [c for c in proc.children(recursive=True) if c.pid != task_pid]


@pytest.mark.slow
def test_no_standby_outlives_a_sigkilled_scheduler(dags: Path, tmp_path: Path,
                                                   isolated_env: Path) -> None:
    mark = tmp_path / "nap.pid"
    launcher = SchedulerLauncher(tmp_path, **scheduler_env(dags, MLPIPE_PARALLELISM=2,
                                                           NAP_MARK=mark))
    try:
        proc = launcher.start()
        launcher.wait_started(proc)
        subprocess.run([sys.executable, "-m", "mlpipe", "dags", "trigger", "sleepy",
                        "--no-wait"], env={**os.environ, **scheduler_env(dags)}, check=True,
                       capture_output=True, timeout=60)
        wait_until(mark.exists, timeout=60, what="the task to start")
        task_pid = int(mark.read_text())
        wait_until(lambda: _state(isolated_env, "quick") == "success", timeout=60,
                   what="the quick task to finish")
        scheduler = psutil.Process(proc.pid)
        standbys = wait_until(lambda: _standbys(scheduler, task_pid), timeout=30,
                              what="an idle worker or standby child")
        launcher.track([psutil.Process(task_pid), *standbys])
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=30)
        _, alive = psutil.wait_procs(standbys, timeout=30)
        assert alive == [], f"standbys still running: {alive}"
        # the running try outlives it on purpose: the next scheduler adopts it
        assert psutil.pid_exists(task_pid)
    finally:
        launcher.cleanup()
