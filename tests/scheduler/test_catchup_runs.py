"""Which runs ``Scheduler.loop_once`` creates against a fake clock, read back from the store.

The DAGs (``tests/dags/scheduling/clocked``) fire every six hours from 2024-01-01 00:00 UTC.
The run for ``[start, end)`` exists once ``end`` has passed, with ``logical_date = start``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from scheduler_procs import DAGS, FakeClock

from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

START = datetime(2024, 1, 1, tzinfo=UTC)
SIX = timedelta(hours=6)
#: 20:30 on the first day: [00,06), [06,12) and [12,18) are complete, [18,24) is not
FIXED = datetime(2024, 1, 1, 20, 30, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine.from_settings(load_settings(dags_folder=DAGS / "clocked",
                                                executor="sequential"))
    yield engine
    engine.store.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(FIXED)


@pytest.fixture
def scheduler(engine: Engine, clock: FakeClock) -> Iterator[Scheduler]:
    job = Scheduler(engine, now=clock, scan_interval=0.0, lease=timedelta(minutes=5))
    yield job
    job.store.release_runs(job.id)
    job.executor.shutdown()


def loop(job: Scheduler, times: int = 4) -> None:
    for _ in range(times):
        job.loop_once()


def runs(engine: Engine, dag_id: str) -> list[tuple[str, str, datetime, datetime, datetime]]:
    """(run_id, run_type, logical_date, data_interval_start, data_interval_end), oldest first."""
    return [(r.run_id, r.run_type, r.logical_date, r.data_interval_start, r.data_interval_end)
            for r in engine.store.list_runs(dag_id)]


def six_hourly(*starts: datetime) -> list[tuple[str, str, datetime, datetime, datetime]]:
    return [(f"scheduled__{s.isoformat()}", "scheduled", s, s, s + SIX) for s in starts]


def hours(*values: int) -> list[datetime]:
    return [START + timedelta(hours=h) for h in values]


def test_catchup_creates_every_complete_interval(engine: Engine, scheduler: Scheduler) -> None:
    loop(scheduler)

    assert runs(engine, "six_hourly_catchup") == six_hourly(*hours(0, 6, 12))


def test_without_catchup_only_the_latest_interval(engine: Engine, scheduler: Scheduler
                                                  ) -> None:
    loop(scheduler)

    assert runs(engine, "six_hourly_latest") == six_hourly(*hours(12))


def test_created_runs_are_run_to_success(engine: Engine, scheduler: Scheduler) -> None:
    scheduler.run(until=lambda job: not job.drivers and not engine.store.list_runs(
        states=["queued", "running"]), max_loops=200)

    states = {(r.dag_id, r.run_id): r.state for r in engine.store.list_runs()}
    assert len(states) == 3 + 1 + 1 + 2
    assert set(states.values()) == {"success"}, states


@pytest.mark.parametrize("catchup_dag", ["six_hourly_catchup", "six_hourly_latest"])
def test_advancing_the_clock_creates_exactly_one_more(engine: Engine, scheduler: Scheduler,
                                                      clock: FakeClock, catchup_dag: str
                                                      ) -> None:
    loop(scheduler)
    before = runs(engine, catchup_dag)

    clock.now = datetime(2024, 1, 2, tzinfo=UTC)  # [18,24) of Jan 1 just ended
    loop(scheduler)
    after = runs(engine, catchup_dag)
    assert after == before + six_hourly(*hours(18))

    clock.now = datetime(2024, 1, 2, 5, 59, 59, tzinfo=UTC)  # [00,06) of Jan 2 not yet over
    loop(scheduler)
    assert runs(engine, catchup_dag) == after

    clock.now = datetime(2024, 1, 2, 6, tzinfo=UTC)
    loop(scheduler)
    assert runs(engine, catchup_dag) == after + six_hourly(*hours(24))


def test_paused_dag_gets_no_runs(engine: Engine, scheduler: Scheduler, clock: FakeClock
                                 ) -> None:
    engine.store.set_paused("six_hourly_catchup", True)

    loop(scheduler)
    clock.now += timedelta(days=1)
    loop(scheduler)

    assert runs(engine, "six_hourly_catchup") == []
    assert len(runs(engine, "six_hourly_latest")) == 2  # the other DAGs carry on


def test_once_creates_exactly_one_run(engine: Engine, scheduler: Scheduler, clock: FakeClock
                                      ) -> None:
    loop(scheduler)
    clock.now += timedelta(days=30)
    loop(scheduler)

    assert runs(engine, "once") == [
        (f"scheduled__{START.isoformat()}", "scheduled", START, START, START)]


def test_end_date_is_respected(engine: Engine, scheduler: Scheduler, clock: FakeClock) -> None:
    loop(scheduler)
    clock.now += timedelta(days=5)
    loop(scheduler)

    # logical dates up to end_date (06:00) only, although later intervals are complete
    assert runs(engine, "bounded") == six_hourly(*hours(0, 6))


def test_dag_without_schedule_gets_no_runs(engine: Engine, scheduler: Scheduler) -> None:
    loop(scheduler)

    assert runs(engine, "manual_only") == []


def test_clock_before_the_first_interval_ends_creates_nothing(engine: Engine,
                                                              scheduler: Scheduler,
                                                              clock: FakeClock) -> None:
    clock.now = START + SIX - timedelta(microseconds=1)
    loop(scheduler)

    assert {r.dag_id for r in engine.store.list_runs()} == {"once"}


def test_a_jump_of_the_clock_catches_up_or_skips_to_the_latest(engine: Engine,
                                                                scheduler: Scheduler,
                                                                clock: FakeClock) -> None:
    loop(scheduler)
    clock.now = datetime(2024, 1, 3, 1, tzinfo=UTC)  # six more intervals ended meanwhile
    loop(scheduler)

    assert runs(engine, "six_hourly_catchup") == six_hourly(*hours(*range(0, 48, 6)))
    assert runs(engine, "six_hourly_latest") == six_hourly(*hours(12, 42))


def test_a_restarted_scheduler_creates_no_duplicates(engine: Engine, scheduler: Scheduler,
                                                     clock: FakeClock) -> None:
    loop(scheduler)
    before = {dag_id: runs(engine, dag_id) for dag_id in ("six_hourly_catchup",
                                                          "six_hourly_latest", "once",
                                                          "bounded")}
    scheduler.executor.shutdown()

    again = Scheduler(engine, now=clock, scan_interval=0.0)
    try:
        loop(again)
    finally:
        again.executor.shutdown()

    assert {dag_id: runs(engine, dag_id) for dag_id in before} == before
