"""Task processes that die, go silent or overrun under the LocalExecutor.

A helper thread signals the task's process while the driver runs the DAG in the test's
main thread, as ``mlpipe dags trigger`` would; pytest timeouts turn a hung run into a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlpipe.scheduler.service import Engine

HEARTBEAT_TIMEOUT = 1.5
#: how long after the signal the run may take to end (detection, kill, retry)
GRACE = HEARTBEAT_TIMEOUT + 3.0

#: (signal, what the task instance's error and log say about the lost try)
WAYS_TO_LOSE_A_TASK = [
    pytest.param(signal.SIGKILL, "task process exited with code -9 without a result",
                 id="sigkill"),
    pytest.param(signal.SIGSTOP, f"no heartbeat for {HEARTBEAT_TIMEOUT:g} s", id="sigstop",
                 marks=[pytest.mark.slow, pytest.mark.xfail(
                     reason="open regression of the warm local pool: in the full suite the "
                            "retry of a try whose pool worker is SIGSTOPped can wait past 30 s "
                            "(passes alone); to fix with the fault suite", strict=False)]),
]


def read_pid(path: Path, *, within: float = 15.0) -> int:
    """The PID a task wrote to ``path``, waiting up to ``within`` seconds for it."""
    deadline = time.monotonic() + within
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no PID in {path} after {within} s")
        time.sleep(0.02)
    return int(path.read_text())


def gone(pid: int, *, within: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    import psutil

    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass
class Signaller:
    """Sends ``sig`` to the PID a task writes to ``pid_file``, from a background thread."""

    pid_file: Path
    sig: int
    pid: int | None = None
    sent_at: float | None = None
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> Signaller:
        self._thread = threading.Thread(target=self._send, daemon=True, name="signaller")
        self._thread.start()
        return self

    def _send(self) -> None:
        try:
            self.pid = read_pid(self.pid_file)
            os.kill(self.pid, self.sig)
            self.sent_at = time.monotonic()
        except BaseException as exc:  # reported by join() in the test's thread
            self.error = exc

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(20)
        assert self.error is None, f"could not signal the task: {self.error!r}"
        assert self.sent_at is not None

    def cleanup(self) -> None:
        """Never leave a stopped or sleeping task behind, whatever the test saw."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


@pytest.fixture
def signaller() -> Iterator[Callable[[Path, int], Signaller]]:
    started: list[Signaller] = []

    def start(pid_file: Path, sig: int) -> Signaller:
        started.append(Signaller(pid_file, sig).start())
        return started[-1]

    yield start
    for s in started:
        s.cleanup()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(task_lease_s=HEARTBEAT_TIMEOUT)


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    return tmp_path / "task.pid"


def _unfinished(run) -> list[str]:
    return [f"{ti.task_id}={ti.state.value}" for ti in run.task_instances
            if ti.state.value in ("none", "scheduled", "queued", "running", "up_for_retry")]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("sig", "reason"), WAYS_TO_LOSE_A_TASK)
def test_lost_try_is_retried_and_the_retry_succeeds(engine: Engine, signaller, pid_file: Path,
                                                    sig: int, reason: str) -> None:
    dag = engine.get_dag("victim_with_retry")
    engine.trigger(dag, run_id="r1", conf={"pid_file": str(pid_file)})
    lost = signaller(pid_file, sig)

    run = engine.run(dag, "r1")

    ended_at = time.monotonic()
    lost.join()
    ti = run.get_task_instance("victim")
    history = [(t.try_number, t.from_state, t.to_state)
               for t in engine.store.transitions("victim_with_retry", "r1")
               if t.task_id == "victim"]
    assert run.state == "success", f"history {history}; log:\n{ti.log}"
    assert (ti.state, ti.try_number) == ("success", 2)
    assert ti.pid != lost.pid
    assert history == [(0, "none", "queued"), (1, "queued", "running"),
                       (1, "running", "up_for_retry"), (1, "up_for_retry", "queued"),
                       (2, "queued", "running"), (2, "running", "success")]
    assert reason in ti.try_log(1)
    assert "victim try 2" in ti.try_log(2)
    assert "recovered on try 2" in ti.try_log(2)
    assert ended_at - lost.sent_at < GRACE
    assert gone(lost.pid)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("sig", "reason"), WAYS_TO_LOSE_A_TASK)
def test_lost_try_without_retries_fails_the_run(engine: Engine, signaller, pid_file: Path,
                                                sig: int, reason: str) -> None:
    dag = engine.get_dag("victim_without_retry")
    engine.trigger(dag, run_id="r1", conf={"pid_file": str(pid_file)})
    lost = signaller(pid_file, sig)

    run = engine.run(dag, "r1")

    ended_at = time.monotonic()
    lost.join()
    ti = run.get_task_instance("victim")
    assert run.state == "failed"
    assert (ti.state, ti.try_number) == ("failed", 1)
    assert reason in ti.error
    assert reason in ti.log
    assert run.get_task_instance("after").state == "upstream_failed"
    assert _unfinished(run) == []
    assert ended_at - lost.sent_at < GRACE
    assert gone(lost.pid)


@pytest.mark.timeout(30)
def test_log_of_a_killed_try_keeps_what_the_task_wrote_before_it_died(
        engine: Engine, signaller, pid_file: Path) -> None:
    dag = engine.get_dag("victim_without_retry")
    engine.trigger(dag, run_id="r1", conf={"pid_file": str(pid_file)})
    killed = signaller(pid_file, signal.SIGKILL)

    run = engine.run(dag, "r1")

    killed.join()
    log = run.get_task_instance("victim").try_log(1)
    assert "Starting try 1 of 1: victim" in log
    assert "victim try 1" in log  # printed before it wrote its PID, so before the kill
    assert "task process exited with code -9 without a result" in log


@pytest.mark.timeout(30)
def test_timed_out_task_fails_and_the_process_it_started_is_gone(
        engine: Engine, pid_file: Path) -> None:
    dag = engine.get_dag("task_timeout")
    engine.trigger(dag, run_id="r1", conf={"pid_file": str(pid_file)})
    started = time.monotonic()

    run = engine.run(dag, "r1")

    took = time.monotonic() - started
    grandchild = read_pid(pid_file, within=0)
    try:
        ti = run.get_task_instance("hang")
        assert run.state == "failed"
        assert (ti.state, ti.try_number) == ("failed", 1)
        assert "timed out" in ti.log
        assert "TaskTimeoutError" in ti.error
        assert took < 10, f"the run took {took:.1f} s for a task with a 1 s timeout"
        assert gone(grandchild), f"'sleep 60' (pid {grandchild}) outlived its timed-out task"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)
