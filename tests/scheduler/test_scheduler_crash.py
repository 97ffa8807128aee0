"""A ``mlpipe scheduler`` SIGKILLed mid-run, then replaced: the run finishes, finished tasks
are not redone, killed tasks are retried, nothing is left stuck.

``journal_chain`` is t1 >> ... >> t6 (retries=1, no retry delay); each task journals
``start``/``end`` with its PID and try number. The scheduler is killed while ``t3`` (two
seconds long) runs. Each task process leads its own process group (the LocalExecutor
``setsid``s it), so killing the scheduler's group leaves the task running; to kill "the whole
machine" the test also kills every descendant.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from scheduler_procs import DAGS, SchedulerLauncher, journal, scheduler_env, stop, wait_until

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

TASKS = ["t1", "t2", "t3", "t4", "t5", "t6"]


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[SchedulerLauncher]:
    launcher = SchedulerLauncher(tmp_path, **scheduler_env(DAGS / "crash"))
    try:
        yield launcher
    finally:
        launcher.cleanup()


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine.from_settings(load_settings(dags_folder=DAGS / "crash"))
    yield engine
    engine.store.dispose()


def gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (exited, or a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def events(home: Path, kind: str) -> list[tuple[str, int, int]]:
    """(task_id, pid, try) of each journal line of ``kind`` (start or end)."""
    return [(t, int(pid), int(n)) for k, t, pid, n in journal(home) if k == kind]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill", ["scheduler_only", "whole_tree"])
def test_killed_scheduler_is_replaced_without_redoing_finished_tasks(
        kill: str, launcher: SchedulerLauncher, engine: Engine, isolated_env: Path) -> None:
    engine.trigger(engine.get_dag("journal_chain"), run_id="r1")
    first = launcher.start()

    def t3_started() -> int | None:
        if not first.alive():
            raise AssertionError(f"the scheduler died on its own:\n{first.describe()}")
        return next((pid for t, pid, _ in events(isolated_env, "start") if t == "t3"), None)

    t3_pid = wait_until(t3_started, timeout=60, what="t3 to start")
    children = first.task_processes()
    launcher.track(children)
    assert t3_pid in {c.pid for c in children}
    assert os.getpgid(t3_pid) != os.getpgid(first.pid)  # the task leads its own group
    assert [t for t, _, _ in events(isolated_env, "end")] == ["t1", "t2"]

    os.killpg(first.pid, signal.SIGKILL)
    if kill == "whole_tree":
        for child in children:
            child.kill()
    assert first.popen.wait(timeout=10) == -signal.SIGKILL
    if kill == "scheduler_only":
        assert not gone(t3_pid), "t3 should survive its scheduler"
    else:
        wait_until(lambda: gone(t3_pid), timeout=10, what="the killed t3 process to end")
    killed_at = datetime.now(UTC)

    second = launcher.start()

    def run_finished() -> str | None:
        if not second.alive():
            raise AssertionError(f"the new scheduler exited:\n{second.describe()}")
        state = engine.store.get_run("journal_chain", "r1").state
        return state if state in ("success", "failed") else None

    assert wait_until(run_finished, timeout=60, what="the run to finish") == "success", \
        second.describe()

    tis = {t.task_id: t for t in engine.store.list_tis("journal_chain", "r1")}
    assert {t: ti.state for t, ti in tis.items()} == dict.fromkeys(TASKS, "success")
    starts, ends = events(isolated_env, "start"), events(isolated_env, "end")
    # every task finished exactly once, by its last (successful) try
    assert sorted(t for t, _, _ in ends) == TASKS
    assert {t: n for t, _, n in ends} == {t: ti.try_number for t, ti in tis.items()}
    # tasks that finished before the kill were not redone
    for task_id in ("t1", "t2"):
        assert tis[task_id].try_number == 1
        assert Counter(t for t, _, _ in starts)[task_id] == 1
    # tasks after t3 ran once, under the new scheduler
    for task_id in ("t4", "t5", "t6"):
        assert tis[task_id].try_number == 1
        assert tis[task_id].start_date is not None and tis[task_id].start_date > killed_at
    t3_tries = [(pid, n) for t, pid, n in starts if t == "t3"]
    if kill == "scheduler_only":
        # the orphaned task process finished its try; the new scheduler waited for it
        assert t3_tries == [(t3_pid, 1)]
        assert ("t3", t3_pid, 1) in ends
        assert tis["t3"].try_number == 1
    else:
        # the killed try was noticed (no heartbeat) and retried once
        assert [n for _, n in t3_tries] == [1, 2]
        assert t3_tries[1][0] != t3_pid
        assert tis["t3"].try_number == 2
        lost = [(s.try_number, s.from_state, s.to_state)
                for s in engine.store.transitions("journal_chain", "r1") if s.task_id == "t3"]
        assert (1, "running", "up_for_retry") in lost
    # nothing is stuck: every run finished, no instance queued or running anywhere
    assert {r.state for r in engine.store.list_runs()} == {"success"}
    assert stop(second) == 0
