"""catchup=False with max_active_runs reached creates no run per missed interval; triggers
respect pause and max_active_runs; new DAGs may start paused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scheduler_procs import DAGS, FakeClock, wait_until

from mlpipe.scheduler.runs import create_dag_run
from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

FOLDER = DAGS.parent / "scheduling" / "blocked"
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine.from_settings(load_settings(dags_folder=FOLDER, executor="sequential"))
    yield engine
    engine.store.dispose()


def _block(engine: Engine) -> None:
    """A manual run of ``blocked`` running under another (live) holder."""
    dag = engine.get_dag("blocked")
    create_dag_run(engine.store, dag, run_id="manual_1", logical_date=START)
    engine.store.set_run_state("blocked", "manual_1", "running", start_date=START)
    assert engine.store.lease_run("elsewhere", "blocked", "manual_1", timedelta(days=1))


def test_a_blocked_dag_without_catchup_gets_one_run_once_room_frees(engine: Engine) -> None:
    _block(engine)
    clock = FakeClock(START + timedelta(hours=7))
    job = Scheduler(engine, now=clock, scan_interval=0.0, lease=timedelta(minutes=5))
    try:
        for _ in range(6):  # six intervals pass while the DAG is at max_active_runs
            job.loop_once()
            clock.now += timedelta(hours=6)
        assert [r.run_id for r in engine.store.list_runs("blocked")] == ["manual_1"]

        engine.store.set_run_state("blocked", "manual_1", "success", end_date=clock.now)
        for _ in range(3):
            job.loop_once()
        scheduled = [r for r in engine.store.list_runs("blocked") if r.run_type == "scheduled"]
        assert len(scheduled) == 1  # the latest interval only, not one per missed interval
        # the clock is at 2024-01-02 19:00: the latest complete interval starts at 12:00
        assert scheduled[0].logical_date == datetime(2024, 1, 2, 12, tzinfo=UTC)
    finally:
        job.store.release_runs(job.id)
        job.executor.shutdown()


@pytest.mark.parametrize("default", [True, False])
def test_new_dags_paused_at_creation_by_setting_or_dag(default: bool, isolated_env: Path
                                                       ) -> None:
    engine = Engine.from_settings(load_settings(dags_folder=FOLDER, executor="sequential",
                                                dags_paused_at_creation=default))
    job = Scheduler(engine, now=FakeClock(START), scan_interval=0.0)
    try:
        job.loop_once()
        paused = {d.dag_id: d.is_paused for d in engine.store.list_dags()}
        assert paused == {"blocked": default, "always_on": False}
        engine.store.set_paused("blocked", not default)
        job.watcher = type(job.watcher)(FOLDER)  # a fresh parse records the DAGs again
        job._next_scan = 0.0
        job.loop_once()
        assert engine.store.get_dag("blocked").is_paused is (not default)  # kept
    finally:
        job.executor.shutdown()
        engine.store.dispose()


def _cli(*args: str, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "MLPIPE_DAGS_FOLDER": str(FOLDER), **env}
    return subprocess.Popen([sys.executable, "-m", "mlpipe", *args], env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_trigger_of_a_paused_dag_says_so_and_leaves_the_run_queued(isolated_env: Path) -> None:
    out, err = _cli("dags", "trigger", "blocked", "--no-wait", "--run-id", "r1",
                    MLPIPE_DAGS_PAUSED_AT_CREATION="true").communicate(timeout=60)
    assert "DAG blocked is paused: run r1 is queued and starts when the DAG is unpaused" in out

    proc = _cli("dags", "trigger", "blocked", "--wait", "--run-id", "r2")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().startswith("error: DAG blocked is paused: run r2 is queued")
    engine = Engine.from_settings(load_settings(dags_folder=FOLDER))
    try:
        assert {r.run_id: r.state for r in engine.store.list_runs("blocked")} == \
            {"r1": "queued", "r2": "queued"}
    finally:
        engine.store.dispose()


@pytest.mark.slow
def test_trigger_wait_waits_for_room_under_max_active_runs(isolated_env: Path) -> None:
    engine = Engine.from_settings(load_settings(dags_folder=FOLDER))
    try:
        _block(engine)
        out = isolated_env / "trigger.out"
        with open(out, "w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlpipe", "dags", "trigger", "blocked", "--wait",
                 "--run-id", "r2"], env={**os.environ, "MLPIPE_DAGS_FOLDER": str(FOLDER)},
                stdout=sink, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: "(max_active_runs): waiting for one to end" in out.read_text(),
                   timeout=60, what="the CLI to wait for room")
        assert engine.store.get_run("blocked", "r2").state == "queued"
        engine.store.set_run_state("blocked", "manual_1", "success", end_date=START)
        assert proc.wait(timeout=60) == 0, out.read_text()
        assert engine.store.get_run("blocked", "r2").state == "success"
    finally:
        engine.store.dispose()
