"""Helpers for the scheduler tests: bounded waits, and ``mlpipe scheduler`` subprocesses
that are always killed at the end, together with the task processes they started.

Not a test module (no ``test_`` prefix); the scheduler tests import it by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

DAGS = Path(__file__).resolve().parents[1] / "dags" / "scheduling"

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float, what: str,
               interval: float = 0.05) -> T:
    """Call ``condition`` until it returns something truthy (returned); fail after
    ``timeout`` seconds naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def journal(home: Path) -> list[list[str]]:
    """The lines tasks appended to ``$MLPIPE_HOME/journal.txt``, split into fields."""
    path = home / "journal.txt"
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


class SchedulerProcess:
    """One ``python -m mlpipe scheduler`` in its own session, output kept in files."""

    def __init__(self, popen: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.popen = popen
        self.out = out
        self.err = err

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def stdout(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def task_processes(self) -> list[psutil.Process]:
        """The scheduler's descendants (its forked task processes) right now."""
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def describe(self) -> str:
        return (f"scheduler pid {self.pid} (exit {self.popen.poll()})\n--- stdout\n"
                f"{self.stdout()[-3000:]}\n--- stderr\n{self.stderr()[-6000:]}")


class SchedulerLauncher:
    """Starts schedulers; ``cleanup()`` SIGKILLs every one still running and every task
    process seen under one (also those orphaned by a test that killed their scheduler)."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: list[SchedulerProcess] = []
        self.tracked: list[psutil.Process] = []

    def start(self, *args: str, **env: str) -> SchedulerProcess:
        n = len(self.procs) + 1
        out, err = self.workdir / f"scheduler{n}.out", self.workdir / f"scheduler{n}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **env}
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler", *args],
                                     cwd=self.workdir, env=full_env, stdout=fo, stderr=fe,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        proc = SchedulerProcess(popen, out, err)
        self.procs.append(proc)
        return proc

    def track(self, processes: list[psutil.Process]) -> None:
        """Remember task processes so cleanup kills them even after their parent died."""
        self.tracked.extend(processes)

    def wait_started(self, proc: SchedulerProcess, timeout: float = 30.0) -> None:
        """Until the scheduler logged that it runs (holds its lock, loops)."""

        def started() -> bool:
            if not proc.alive():
                raise AssertionError(f"the scheduler exited early:\n{proc.describe()}")
            return " started (executor " in proc.stderr()

        wait_until(started, timeout=timeout, what="the scheduler to start")

    def cleanup(self) -> None:
        victims: list[psutil.Process] = list(self.tracked)
        for proc in self.procs:
            victims.extend(proc.task_processes())
        for proc in self.procs:
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()  # psutil refuses if the PID was reused by another process
        psutil.wait_procs(victims, timeout=5)


def stop(proc: SchedulerProcess, *, timeout: float = 30.0) -> int:
    """SIGTERM the scheduler and wait for its exit code."""
    proc.popen.send_signal(signal.SIGTERM)
    try:
        return proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"scheduler ignored SIGTERM for {timeout} s:\n"
                             f"{proc.describe()}") from None


def scheduler_env(dags: Path, **extra: Any) -> dict[str, str]:
    """Environment of a LocalExecutor scheduler over ``dags`` with a 2 s heartbeat timeout."""
    env = {"MLPIPE_DAGS_FOLDER": str(dags), "MLPIPE_EXECUTOR": "local",
           "MLPIPE_TASK_LEASE_S": "2"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


class FakeClock:
    """A ``now`` for ``Scheduler(now=...)`` that tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
