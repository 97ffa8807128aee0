"""Reschedule mode under the real scheduler loop and the local executor with ONE slot:
the waiting sensor gives its slot up, so the task it waits for can run."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine


@pytest.mark.timeout(60)
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_rescheduled_sensor_holds_no_slot_and_keeps_its_try_number(
        make_engine: Callable[..., Engine], database: str,
        request: pytest.FixtureRequest) -> None:
    extra = ({"database_url": request.getfixturevalue("postgres_databases")()}
             if database == "postgres" else {})
    engine = make_engine("reschedule", parallelism=1, **extra)
    dag = engine.get_dag("wait_for_file")
    run = engine.trigger(dag)

    def finished(_: Scheduler) -> bool:
        return engine.store.get_run("wait_for_file", run.run_id).state in ("success", "failed")

    Scheduler(engine, scan_interval=0.2).run(until=finished)

    assert engine.store.get_run("wait_for_file", run.run_id).state == "success"
    tis = {t.task_id: t for t in engine.store.list_tis("wait_for_file", run.run_id)}
    assert tis["wait"].state == tis["other"].state == "success"
    assert tis["wait"].try_number == 1  # pokes after a reschedule are the same try
    assert tis["wait"].reschedule_date is None  # cleared when it poked again

    moves = engine.store.transitions("wait_for_file", run.run_id)
    wait = [m for m in moves if m.task_id == "wait"]
    other = [m for m in moves if m.task_id == "other"]
    pokes = [m.at for m in wait if m.to_state == "running"]
    assert len(pokes) >= 2
    assert {m.try_number for m in wait[1:]} == {1}  # after the first queueing (try 0)
    assert sum(m.to_state == "up_for_reschedule" for m in wait) == len(pokes) - 1
    # "other" ran while the sensor waited, on the only slot
    other_start = next(m.at for m in other if m.to_state == "running")
    other_end = next(m.at for m in other if m.from_state == "running")
    assert pokes[0] < other_start < pokes[-1]
    assert other_end <= pokes[-1]
    # never two task processes at once on one slot
    spans = [(other_start, other_end)] + [
        (m.at, n.at) for m, n in itertools.pairwise(wait)
        if m.to_state == "running" and n.from_state == "running"]
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    # the scheduler queued it again no sooner than poke_interval (0.5 s) after each poke
    for before, after in itertools.pairwise(pokes):
        assert (after - before).total_seconds() >= 0.45


@pytest.mark.timeout(90)
def test_a_waiting_sensor_survives_a_scheduler_restart_as_the_same_try(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("reschedule", parallelism=1)
    run = engine.trigger(engine.get_dag("wait_for_file"))

    def sensor_waiting(_: Scheduler) -> bool:
        ti = {t.task_id: t for t in engine.store.list_tis("wait_for_file", run.run_id)}
        return ti["wait"].state == "up_for_reschedule"

    first = Scheduler(engine, scan_interval=0.2, grace_period=10)
    first.run(until=sensor_waiting)  # stops as soon as the sensor is waiting
    waiting = engine.store.get_ti(next(t.key for t in engine.store.list_tis(
        "wait_for_file", run.run_id) if t.task_id == "wait"))
    assert waiting is not None and waiting.reschedule_date is not None

    def finished(_: Scheduler) -> bool:
        return engine.store.get_run("wait_for_file", run.run_id).state in ("success", "failed")

    Scheduler(engine, scan_interval=0.2).run(until=finished)  # a new scheduler takes over

    assert engine.store.get_run("wait_for_file", run.run_id).state == "success"
    tis = {t.task_id: t for t in engine.store.list_tis("wait_for_file", run.run_id)}
    assert tis["wait"].state == "success" and tis["wait"].try_number == 1
