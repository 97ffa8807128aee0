"""The contract every executor keeps; a new executor is done when it passes this suite.

Task instances are queued in a real store and handed to the executor directly (no driver),
so what is checked is the executor alone: one event per submission, the outcome in the
store, claims honoured, ``busy`` and ``poll(timeout)`` behaving, ``parallelism`` respected.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from mlpipe.executors import EXECUTORS, Executor, TaskEvent, Workload
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

DAGS = Path(__file__).resolve().parents[1] / "dags" / "engine"
DAG_ID = "executor_contract"
PARALLELISM = 2


@pytest.fixture
def engine() -> Iterator[Engine]:
    settings = load_settings(executor="local", parallelism=PARALLELISM,
                             task_lease_s=2, dags_folder=DAGS)
    engine = Engine.from_settings(settings)
    yield engine
    engine.store.dispose()


#: the celery executor needs PostgreSQL, a broker and workers: tests/celery covers it
@pytest.fixture(params=sorted(set(EXECUTORS) - {"celery"}))
def executor(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Executor]:
    executor = engine.make_executor(request.param)
    yield executor
    executor.shutdown()


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """The file each task body appends one line to when it really runs."""
    return tmp_path / "journal.txt"


@pytest.fixture
def run_id(engine: Engine, journal: Path) -> str:
    dag = engine.get_dag(DAG_ID)
    return engine.trigger(dag, run_id="r1", conf={"journal": str(journal), "nap": 0.3}).run_id


def _key(run_id: str, task_id: str) -> TIKey:
    return TIKey(DAG_ID, run_id, task_id)


def _submit_queued(engine: Engine, executor: Executor, run_id: str, *task_ids: str
                   ) -> list[TIKey]:
    keys = [_key(run_id, t) for t in task_ids]
    for key in keys:
        assert engine.store.transition(key, ["none"], "queued")
        executor.submit(Workload(key))
    return keys


def _collect(executor: Executor, count: int, *, within: float = 20.0) -> list[TaskEvent]:
    """Poll until ``count`` events arrived (fails after ``within`` seconds)."""
    events: list[TaskEvent] = []
    deadline = time.monotonic() + within
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {len(events)} of {count} events arrived"
        events.extend(executor.poll(0.1))
    return events


def _journal_lines(journal: Path) -> list[str]:
    return journal.read_text().splitlines() if journal.exists() else []


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (an end at t comes before a start at t)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda edge: (edge[0], edge[1]))
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_max_overlap_counts_intervals_open_at_once() -> None:
    t = [datetime(2024, 1, 1, 0, 0, s) for s in range(6)]
    assert max_overlap([(t[0], t[2]), (t[1], t[3]), (t[2], t[4])]) == 2
    assert max_overlap([(t[0], t[5]), (t[1], t[4]), (t[2], t[3])]) == 3
    assert max_overlap([(t[0], t[1]), (t[1], t[2])]) == 1


@pytest.mark.timeout(30)
def test_each_submission_gives_one_event_and_the_outcome_is_stored(
        engine: Engine, executor: Executor, run_id: str) -> None:
    keys = _submit_queued(engine, executor, run_id, "ok", "boom", "skip")

    events = _collect(executor, len(keys))

    assert sorted(e.key for e in events) == sorted(keys)
    assert executor.poll(0) == []
    records = {k.task_id: engine.store.get_ti(k) for k in keys}
    assert {t: r.state for t, r in records.items()} == {
        "ok": "success", "boom": "failed", "skip": "skipped"}
    assert records["boom"].error == "ValueError: boom on purpose"
    assert records["ok"].error is None
    assert all(r.try_number == 1 for r in records.values())
    assert all(r.start_date <= r.end_date for r in records.values())
    assert engine.store.get_xcoms(DAG_ID, run_id, "ok", "return_value") == {-1: '"ok"'}


@pytest.mark.timeout(30)
def test_busy_counts_work_not_yet_reported(engine: Engine, executor: Executor,
                                           run_id: str) -> None:
    assert executor.busy == 0

    _submit_queued(engine, executor, run_id, "nap_0", "nap_1")
    assert executor.busy == 2

    _collect(executor, 2)
    assert executor.busy == 0


@pytest.mark.timeout(30)
def test_finished_instance_is_not_run_again(engine: Engine, executor: Executor, run_id: str,
                                            journal: Path) -> None:
    (key,) = _submit_queued(engine, executor, run_id, "ok")
    _collect(executor, 1)
    before = engine.store.get_ti(key)
    transitions = len(engine.store.transitions(DAG_ID, run_id))

    executor.submit(Workload(key))  # success, not queued: the claim must fail
    (event,) = _collect(executor, 1)

    assert event.key == key
    after = engine.store.get_ti(key)
    assert (after.state, after.try_number, after.start_date) == \
        ("success", 1, before.start_date)
    assert len(engine.store.transitions(DAG_ID, run_id)) == transitions
    assert [line.split()[:2] for line in _journal_lines(journal)] == [["ok", "1"]]


@pytest.mark.timeout(30)
def test_instance_never_queued_is_not_run(engine: Engine, executor: Executor, run_id: str,
                                          journal: Path) -> None:
    key = _key(run_id, "ok")

    executor.submit(Workload(key))
    (event,) = _collect(executor, 1)

    assert event.key == key
    record = engine.store.get_ti(key)
    assert (record.state, record.try_number, record.start_date) == ("none", 0, None)
    assert _journal_lines(journal) == []


@pytest.mark.timeout(30)
def test_one_queued_instance_submitted_twice_runs_once(engine: Engine, executor: Executor,
                                                       run_id: str, journal: Path) -> None:
    (key,) = _submit_queued(engine, executor, run_id, "nap_0")
    executor.submit(Workload(key))

    events = _collect(executor, 2)

    assert [e.key for e in events] == [key, key]
    assert [line.split()[:2] for line in _journal_lines(journal)] == [["nap_0", "1"]]
    record = engine.store.get_ti(key)
    assert (record.state, record.try_number) == ("success", 1)
    claims = [t for t in engine.store.transitions(DAG_ID, run_id) if t.to_state == "running"]
    assert len(claims) == 1


@pytest.mark.parametrize("timeout", [0, 0.3])
def test_poll_with_nothing_running_returns_within_its_timeout(executor: Executor,
                                                              timeout: float) -> None:
    started = time.monotonic()

    assert executor.poll(timeout) == []

    assert time.monotonic() - started < timeout + 0.2


def test_kill_of_an_instance_not_running_here_is_false(executor: Executor, run_id: str) -> None:
    assert executor.kill(_key(run_id, "ok")) is False


@pytest.mark.timeout(30)
def test_never_more_than_parallelism_instances_at_once(engine: Engine, executor: Executor,
                                                       run_id: str) -> None:
    naps = [f"nap_{i}" for i in range(4)]
    keys = _submit_queued(engine, executor, run_id, *naps)

    _collect(executor, len(keys))

    records = [engine.store.get_ti(k) for k in keys]
    assert [r.state for r in records] == ["success"] * 4
    intervals = [(r.start_date, r.end_date) for r in records]
    # Sequential runs one at a time whatever it is given; local uses every slot, no more.
    expected = min(PARALLELISM, executor.parallelism)
    assert max_overlap(intervals) == expected
