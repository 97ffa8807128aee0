"""The scheduler loop in this process: ``max_active_runs`` with slow runs, stopping, the
SQLite scheduler lock."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from scheduler_procs import DAGS

from mlpipe.errors import StoreError
from mlpipe.scheduler.scheduler_job import Scheduler, SchedulerLock
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAYS = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine.from_settings(load_settings(
        dags_folder=DAGS / "one_at_a_time", executor="local", parallelism=2,
        task_lease_s=2))
    yield engine
    engine.store.dispose()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_max_active_runs_one_runs_every_interval_oldest_first_never_two_at_once(
        engine: Engine) -> None:
    running_seen: list[int] = []

    def all_done(job: Scheduler) -> bool:
        records = engine.store.list_runs("one_at_a_time")
        running_seen.append(sum(r.state == "running" for r in records))
        return len(records) == 4 and all(r.state in ("success", "failed") for r in records)

    Scheduler(engine, scan_interval=0.2).run(until=all_done)

    records = engine.store.list_runs("one_at_a_time")
    assert [r.logical_date for r in records] == DAYS  # no interval skipped
    assert [r.run_id for r in records] == [f"scheduled__{d.isoformat()}" for d in DAYS]
    assert [(r.data_interval_start, r.data_interval_end) for r in records] == [
        (d, d + timedelta(days=1)) for d in DAYS]
    assert {r.state for r in records} == {"success"}
    assert max(running_seen) == 1
    # from the recorded times: each run started after the previous one ended, oldest first
    for before, after in itertools.pairwise(records):
        assert before.start_date is not None and before.end_date is not None
        assert after.start_date is not None
        assert before.end_date <= after.start_date, (before.run_id, after.run_id)
    naps = [engine.store.list_tis("one_at_a_time", r.run_id)[0] for r in records]
    for before, after in itertools.pairwise(naps):
        assert before.end_date is not None and after.start_date is not None
        assert before.end_date <= after.start_date
    assert all(ti.state == "success" and ti.try_number == 1 for ti in naps)


def test_run_stops_after_max_loops_and_releases_its_lock(engine: Engine) -> None:
    job = Scheduler(engine, executor=engine.make_executor("sequential"),
                    now=lambda: DAYS[0])  # before any interval ended: nothing to do
    job.run(max_loops=3)

    assert job.loops == 3
    assert engine.store.list_runs() == []
    assert not SchedulerLock(engine.settings.database, engine.settings.home).held_elsewhere()


def test_request_stop_ends_the_loop(engine: Engine) -> None:
    job = Scheduler(engine, executor=engine.make_executor("sequential"), now=lambda: DAYS[0])

    def stop_on_second(j: Scheduler) -> bool:
        if j.loops == 2:
            j.request_stop()
        return j.loops >= 50

    job.run(until=stop_on_second)

    assert job.loops == 2


def test_a_second_scheduler_in_process_is_refused_on_sqlite(engine: Engine) -> None:
    lock = SchedulerLock(engine.settings.database, engine.settings.home)
    lock.acquire()
    try:
        job = Scheduler(engine, executor=engine.make_executor("sequential"))
        with pytest.raises(StoreError, match="another scheduler is running on this SQLite"):
            job.run(max_loops=1)
        assert job.loops == 0
    finally:
        lock.release()
