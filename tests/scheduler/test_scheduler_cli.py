"""``mlpipe scheduler`` and ``mlpipe dags pause|unpause`` as a user runs them."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from scheduler_procs import DAGS, SchedulerLauncher, journal, scheduler_env, wait_until
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

GRACE = 10.0


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[SchedulerLauncher]:
    launcher = SchedulerLauncher(tmp_path, **scheduler_env(DAGS / "sigterm"))
    try:
        yield launcher
    finally:
        launcher.cleanup()


def open_engine(folder: Path, **settings: object) -> Engine:
    return Engine.from_settings(load_settings(dags_folder=folder, **settings))


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigterm_lets_the_running_task_finish_and_starts_nothing_new(
        launcher: SchedulerLauncher) -> None:
    engine = open_engine(DAGS / "sigterm", executor="local", task_lease_s=2)
    try:
        dag = engine.get_dag("graceful")
        engine.trigger(dag, run_id="r1", logical_date="2024-01-01")
        engine.trigger(dag, run_id="r2", logical_date="2024-01-02")  # waits: max_active_runs=1
        slow = TIKey("graceful", "r1", "slow")
        proc = launcher.start("--grace-period", str(GRACE))

        def slow_running() -> bool:
            if not proc.alive():
                raise AssertionError(f"the scheduler exited:\n{proc.describe()}")
            ti = engine.store.get_ti(slow)
            return ti is not None and ti.state == "running"

        wait_until(slow_running, timeout=60, what="task 'slow' to run")
        signalled = datetime.now(UTC)
        began = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=GRACE + 15)
        took = time.monotonic() - began

        assert code == 0, proc.describe()
        assert took < GRACE, f"exit took {took:.1f} s"
        finished = engine.store.get_ti(slow)
        assert finished is not None
        assert (finished.state, finished.try_number) == ("success", 1)
        assert finished.end_date is not None and finished.end_date > signalled
        # nothing new after the signal: no task queued, the next task and run never started
        late = [(s.run_id, s.task_id, s.to_state)
                for r in ("r1", "r2") for s in engine.store.transitions("graceful", r)
                if s.at >= signalled and s.to_state in ("queued", "running")]
        assert late == []
        after = engine.store.get_ti(TIKey("graceful", "r1", "after"))
        # never queued: slow finished after the signal, when the driver queues nothing new
        assert after is not None and after.state == "none"
        assert engine.store.get_run("graceful", "r2").state == "queued"
        assert {t.state for t in engine.store.list_tis("graceful", "r2")} == {"none"}
        assert "stopping: no new work" in proc.stderr()

        # nothing is stuck: the next scheduler finishes both runs, r1 without redoing 'slow'
        Scheduler(engine, scan_interval=0.2).run(until=lambda job: all(
            r.state in ("success", "failed") for r in engine.store.list_runs("graceful")))
        assert [(r.run_id, r.state) for r in engine.store.list_runs("graceful")] == [
            ("r1", "success"), ("r2", "success")]
        again = engine.store.get_ti(slow)
        assert again is not None and again.try_number == 1
    finally:
        engine.store.dispose()



@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigterm_past_the_grace_period_kills_the_task_and_nothing_stays_stuck(
        launcher: SchedulerLauncher) -> None:
    engine = open_engine(DAGS / "sigterm", executor="local", task_lease_s=2)
    try:
        engine.trigger(engine.get_dag("graceful"), run_id="r1")
        slow = TIKey("graceful", "r1", "slow")
        proc = launcher.start("--grace-period", "0.3")

        def slow_pid() -> int | None:
            if not proc.alive():
                raise AssertionError(f"the scheduler exited:\n{proc.describe()}")
            ti = engine.store.get_ti(slow)
            return ti.pid if ti is not None and ti.state == "running" else None

        pid = wait_until(slow_pid, timeout=60, what="task 'slow' to run")
        began = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=15) == 0, proc.describe()
        assert time.monotonic() - began < 5
        # killed either way; whether its parent has reaped it yet is a race: gone or zombie
        assert not psutil.pid_exists(pid) or \
            psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

        # the next scheduler notices the killed try (no heartbeat) and ends the run
        Scheduler(engine, scan_interval=0.2).run(until=lambda job: engine.store.get_run(
            "graceful", "r1").state in ("success", "failed"))
        ti = engine.store.get_ti(slow)
        assert ti is not None and ti.state == "failed"  # retries=0
        assert ti.error is not None and "heartbeat" in ti.error
        assert engine.store.get_run("graceful", "r1").state == "failed"
    finally:
        engine.store.dispose()


def test_scheduler_num_loops_runs_a_triggered_run_and_exits_0(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(DAGS / "backfill"))  # nothing is due there
    engine = open_engine(DAGS / "backfill")
    try:
        engine.trigger(engine.get_dag("unscheduled"), run_id="r1", logical_date="2024-01-05")

        root = logging.getLogger()
        handlers = [(h, list(h.filters)) for h in root.handlers]
        level = root.level

        result = runner.invoke(app, ["scheduler", "-n", "4"])

        assert result.exit_code == 0, result.output
        assert "scheduler " in result.stdout
        # the process's logging is left as it was: no handler added, none filtered
        assert [(h, list(h.filters)) for h in root.handlers] == handlers
        assert root.level == level
        assert engine.store.get_run("unscheduled", "r1").state == "success"
        assert [(task, ds) for _, task, _, _, ds in journal(isolated_env)] == [
            ("extract", "2024-01-05")]
        assert [r.run_id for r in engine.store.list_runs()] == ["r1"]  # nothing scheduled
    finally:
        engine.store.dispose()


def test_scheduler_with_a_missing_dags_folder_is_one_line_error(
        runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scheduler", "-n", "1", "--dags-folder",
                                 str(tmp_path / "nowhere")])

    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "nowhere" in lines[0]


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_pause_and_unpause_from_the_cli_take_effect_on_the_next_loop(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = DAGS / "clocked"
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(folder))
    engine = open_engine(folder, executor="sequential")
    clock = FakeClock(datetime(2024, 1, 1, 20, 30, tzinfo=UTC))
    job = Scheduler(engine, now=clock, scan_interval=0.0)
    try:
        def run_count() -> int:
            return len(engine.store.list_runs("six_hourly_catchup"))

        def is_paused() -> bool:
            out = runner.invoke(app, ["dags", "list", "-o", "json"])
            assert out.exit_code == 0, out.output
            rows = {r["dag_id"]: r for r in json.loads(out.stdout)}
            return bool(rows["six_hourly_catchup"]["is_paused"])

        result = runner.invoke(app, ["dags", "pause", "six_hourly_catchup"])
        assert result.exit_code == 0, result.output
        assert "paused" in result.stdout
        assert is_paused()
        job.loop_once()
        job.loop_once()
        assert run_count() == 0
        assert len(engine.store.list_runs("six_hourly_latest")) == 1  # others unaffected

        result = runner.invoke(app, ["dags", "unpause", "six_hourly_catchup"])
        assert result.exit_code == 0, result.output
        assert not is_paused()
        job.loop_once()
        assert run_count() == 3

        assert runner.invoke(app, ["dags", "pause", "six_hourly_catchup"]).exit_code == 0
        clock.now += timedelta(days=1)
        job.loop_once()
        job.loop_once()
        assert run_count() == 3
        assert len(engine.store.list_runs("six_hourly_latest")) == 2
    finally:
        job.executor.shutdown()
        engine.store.dispose()


def test_pause_of_unknown_dag_is_one_line_error(runner: CliRunner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(DAGS / "clocked"))

    result = runner.invoke(app, ["dags", "pause", "six_hourly"])

    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "six_hourly" in lines[0]


def test_pause_stops_a_running_scheduler_taking_queued_runs(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused DAG's queued runs are not started either (as Airflow does)."""
    monkeypatch.setenv("MLPIPE_DAGS_FOLDER", str(DAGS / "backfill"))
    engine = open_engine(DAGS / "backfill", executor="sequential")
    job = Scheduler(engine, scan_interval=0.0)
    try:
        engine.trigger(engine.get_dag("unscheduled"), run_id="r1")
        assert runner.invoke(app, ["dags", "pause", "unscheduled"]).exit_code == 0
        for _ in range(3):
            job.loop_once()
        assert engine.store.get_run("unscheduled", "r1").state == "queued"

        assert runner.invoke(app, ["dags", "unpause", "unscheduled"]).exit_code == 0
        for _ in range(3):
            job.loop_once()
        assert engine.store.get_run("unscheduled", "r1").state == "success"
    finally:
        job.executor.shutdown()
        engine.store.dispose()

