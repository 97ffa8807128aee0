"""One heartbeat thread per process beats every running try registered with it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlpipe.runtime.heartbeats import Heartbeats
from mlpipe.scheduler.service import Engine
from mlpipe.store.entities import TIKey

DAG_ID = "clear_rerun"


def running_instances(make_engine: Callable[..., Engine], tmp_path: Path,
                      task_ids: list[str]) -> tuple[Engine, list[TIKey]]:
    """Instances of a fresh run, claimed (running) by this process."""
    engine = make_engine(executor="sequential")
    dag = engine.get_dag(DAG_ID)
    engine.trigger(dag, run_id="r1", conf={"marker": str(tmp_path / "m")})
    keys = [TIKey(DAG_ID, "r1", t) for t in task_ids]
    for key in keys:
        assert engine.store.queue(key, ["none"]) == "queued"
        assert engine.store.claim(key, pid=os.getpid()) is not None
    return engine, keys


def heartbeat_at(engine: Engine, key: TIKey) -> object:
    record = engine.store.get_ti(key)
    assert record is not None
    return record.heartbeat_at


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.timeout(30)
def test_every_registered_try_is_beaten_by_one_thread_until_removed(
        make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    engine, (a, d) = running_instances(make_engine, tmp_path, ["a", "d"])
    beats = Heartbeats()
    before = {k: heartbeat_at(engine, k) for k in (a, d)}
    threads_before = threading.active_count()
    token_a = beats.add(engine.store, a, 0.05)
    token_d = beats.add(engine.store, d, 0.05)
    assert threading.active_count() == threads_before + 1  # one thread for both
    wait_until(lambda: all(heartbeat_at(engine, k) != before[k] for k in (a, d)))

    beats.remove(token_a)
    time.sleep(0.1)  # let a beat that was already under way land
    stopped = heartbeat_at(engine, a)
    last_d = heartbeat_at(engine, d)
    wait_until(lambda: heartbeat_at(engine, d) != last_d)
    time.sleep(0.15)  # three intervals: a removed try is never beaten again
    assert heartbeat_at(engine, a) == stopped
    beats.remove(token_d)


@pytest.mark.timeout(30)
def test_a_try_no_longer_running_in_the_store_is_reported_lost_once(
        make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    engine, (a,) = running_instances(make_engine, tmp_path, ["a"])
    beats = Heartbeats()
    lost: list[TIKey] = []
    beats.add(engine.store, a, 0.02, on_lost=lambda: lost.append(a))
    # someone else (a scheduler that judged it dead) failed the instance
    assert engine.store.transition(a, ["running"], "failed")
    wait_until(lambda: lost == [a])
    time.sleep(0.1)
    assert lost == [a]


@pytest.mark.timeout(30)
def test_a_forked_child_beats_its_own_tries_with_a_thread_of_its_own(
        make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    engine, (a, d) = running_instances(make_engine, tmp_path, ["a", "d"])
    from mlpipe.runtime.heartbeats import HEARTBEATS

    token = HEARTBEATS.add(engine.store, a, 30)  # the parent's registry holds one try
    before = heartbeat_at(engine, d)
    pid = os.fork()
    if pid == 0:  # the child: beat d (claimed by the parent's pid: re-claim it as ours)
        code = 1
        try:
            engine.store.engine.dispose(close=False)
            engine.store.writer.dispose(close=False)
            with engine.store.writer.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE task_instance SET pid = ? WHERE task_id = 'd'", (os.getpid(),))
            HEARTBEATS.add(engine.store, d, 0.02)
            deadline = time.monotonic() + 10
            while heartbeat_at(engine, d) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            code = 0 if heartbeat_at(engine, d) != before else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    HEARTBEATS.remove(token)
    assert os.waitstatus_to_exitcode(status) == 0
