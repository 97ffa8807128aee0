"""The LocalExecutor's standby children: forked ahead, one try each, never stale, retired.

Each test drives real runs through the store; the children are real forked processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mlpipe import DAG, task
from mlpipe.executors import LocalExecutor
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    dags = tmp_path / "dags"
    dags.mkdir()
    settings = load_settings(home=tmp_path / "home", dags_folder=dags, executor="local",
                             parallelism=2, task_lease_s=2)
    engine = Engine.from_settings(settings)
    yield engine
    engine.store.dispose()


def pid_chain(version: str, length: int = 6) -> DAG:
    """``length`` tasks in a row; each returns ``[(version, its pid), ...]`` so far."""
    with DAG("pids") as dag:
        @task
        def first() -> list[list[object]]:
            return [[version, os.getpid()]]

        @task
        def step(seen: list[list[object]]) -> list[list[object]]:
            return [*seen, [version, os.getpid()]]

        value = first()
        for _ in range(length - 1):
            value = step(value)
    return dag


def final_value(engine: Engine, dag: DAG, run_id: str, executor: LocalExecutor) -> list:
    engine.trigger(dag, run_id=run_id)
    run = engine.run(dag, run_id, executor=executor)
    assert run.state == "success"
    last = dag.topological_sort()[-1].task_id
    ti = run.get_task_instance(last)
    assert ti is not None
    return ti.xcom_pull()


def children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if p.status() != psutil.STATUS_ZOMBIE]


def test_every_try_runs_in_a_process_of_its_own(engine: Engine) -> None:
    executor = engine.make_executor("local")
    try:
        seen = final_value(engine, pid_chain("v1"), "r1", executor)
        pids = [pid for _, pid in seen]
        assert len(set(pids)) == len(pids) == 6
        assert os.getpid() not in pids
    finally:
        executor.shutdown()


def test_a_standby_forked_before_a_dag_was_parsed_again_never_runs_it(
        engine: Engine) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    try:
        first = final_value(engine, pid_chain("v1"), "r1", executor)
        assert {version for version, _ in first} == {"v1"}
        standby = {p.pid for p in children()}
        assert standby, "standbys wait for the next run"
        # the same dag_id, defined again (as a changed DAG file would be): the standbys
        # hold the old definition in their memory and must not run the new one
        second = final_value(engine, pid_chain("v2"), "r2", executor)
        assert {version for version, _ in second} == {"v2"}
        assert not standby & {pid for _, pid in second}
    finally:
        executor.shutdown()


def test_idle_standbys_are_retired_and_shutdown_leaves_no_process(engine: Engine) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    executor.standby_idle = 0.3
    try:
        dag = pid_chain("v1", length=3)
        final_value(engine, dag, "r1", executor)
        deadline = time.monotonic() + 20
        while children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert children() == []
        # and a later run still gets its processes
        assert len(final_value(engine, dag, "r2", executor)) == 3
    finally:
        executor.shutdown()
    deadline = time.monotonic() + 10
    while children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children() == []
