"""In-process runs: one transaction hands a finished try over to the next one.

``dag.test()`` finishes a try, writes its XComs, queues the downstream instances it made
ready and claims the next instance to run in one transaction; the journal of state changes
and every semantic of the run stay what they were.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from mlpipe import DAG, task
from mlpipe.runtime import expansion
from mlpipe.scheduler import dag_test
from mlpipe.store.memory import MemoryStore


def chain(n: int, **dag_kwargs: Any) -> DAG:
    with DAG(f"handoff_chain_{n}", **dag_kwargs) as dag:
        @task
        def start() -> int:
            return 0

        @task
        def step(x: int) -> int:
            return x + 1

        value = start()
        for _ in range(n - 1):
            value = step(value)
    return dag


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the write transactions (outermost ones) on ``dag.test()``'s store."""
    counted: Counter[str] = Counter()

    class CountingStore(MemoryStore):
        def transaction(self) -> Any:
            if self._tx is None:
                counted.update(["commit"])
            return super().transaction()

    monkeypatch.setattr(dag_test, "MemoryStore", CountingStore)
    return counted


def test_a_chain_takes_one_write_transaction_per_task(commits: Counter[str]) -> None:
    run = chain(30).test(logical_date=datetime(2024, 1, 1))
    assert run.state == "success"
    assert run.get_task_instance("step__28").xcom_pull() == 29  # type: ignore[union-attr]
    # create the run, start it, queue the root, end it: the rest is one commit per task
    assert 30 <= commits["commit"] <= 30 + 6


def test_every_state_change_is_still_journaled_in_order() -> None:
    dag = chain(5)
    run = dag.test()
    journal: dict[str, list[tuple[str, str, int]]] = {}
    for change in run.store.transitions(dag.dag_id, run.run_id):
        journal.setdefault(change.task_id, []).append(
            (change.from_state, change.to_state, change.try_number))
    assert set(journal) == set(dag.task_dict)
    for changes in journal.values():
        assert changes == [("none", "queued", 0), ("queued", "running", 1),
                           ("running", "success", 1)]


def test_a_task_starts_after_its_upstream_ended() -> None:
    dag = chain(6)
    run = dag.test()
    tis = {ti.task_id: ti for ti in run.task_instances}
    for t in dag.task_dict.values():
        for up in t.upstream_task_ids:
            assert tis[t.task_id].start_date >= tis[up].end_date  # type: ignore[operator]


def test_a_fan_out_never_has_more_than_max_active_tasks_queued_or_running() -> None:
    with DAG("handoff_fanout", max_active_tasks=2) as dag:
        @task
        def source() -> int:
            return 1

        @task
        def branch(x: int, i: int) -> int:
            return x + i

        @task
        def join(*values: int) -> int:
            return sum(values)

        first = source()
        join(*[branch.override(task_id=f"b{i}")(first, i) for i in range(8)])
    run = dag.test()
    assert run.state == "success"
    assert run.get_task_instance("join").xcom_pull() == 8 + sum(range(8))  # type: ignore[union-attr]
    active, most = 0, 0
    for change in run.store.transitions(dag.dag_id, run.run_id):
        if change.to_state == "queued":
            active += 1
        elif change.from_state == "running":
            active -= 1
        most = max(most, active)
    assert most == 2


def test_mapped_inputs_from_xcom_are_resolved_once_and_private_to_each_instance(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    resolve = expansion.resolve_expand_input

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["resolve"] += 1
        return resolve(*args, **kwargs)

    monkeypatch.setattr(expansion, "resolve_expand_input", counting)
    with DAG("handoff_mapped") as dag:
        @task
        def rows() -> list[dict[str, int]]:
            return [{"n": i} for i in range(40)]

        @task
        def grow(row: dict[str, int]) -> int:
            row["n"] += 1000  # changes this instance's copy only
            return row["n"]

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        total(grow.expand(row=rows()))
    run = dag.test()
    assert run.state == "success"
    assert run.get_task_instance("total").xcom_pull() == sum(range(40)) + 40 * 1000  # type: ignore[union-attr]
    assert calls["resolve"] <= 2  # the driver's expansion, then one for all 40 instances
