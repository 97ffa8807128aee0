"""Two branches of one DAG run side by side under the LocalExecutor, proven from the store."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime

import pytest

from mlpipe.scheduler.service import Engine

Interval = tuple[datetime, datetime]


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def max_open(intervals: list[Interval]) -> int:
    """The most intervals open at one instant (an end at t comes before a start at t)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_two_branches_run_concurrently_never_more_than_parallelism(
        make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(parallelism=2)
    dag = engine.get_dag("two_branches")
    engine.trigger(dag, run_id="r1", conf={"nap": 0.3})

    run = engine.run(dag, "r1")

    tis = {ti.task_id: ti for ti in run.task_instances}
    assert run.state == "success"
    assert len(tis) == 20
    assert {ti.state.value for ti in tis.values()} == {"success"}
    span = {t: (ti.start_date, ti.end_date) for t, ti in tis.items()}
    branch_a = [span[f"a_{i}"] for i in range(1, 10)]
    branch_b = [span[f"b_{i}"] for i in range(1, 10)]
    side_by_side = sum(any(overlaps(a, b) for b in branch_b) for a in branch_a)
    assert side_by_side >= 5, f"only {side_by_side} of 9 'a' tasks overlapped a 'b' task"
    assert max_open(list(span.values())) == 2
    # the chains kept their order and the ends waited for both branches
    for branch in (branch_a, branch_b):
        assert all(x[1] <= y[0] for x, y in itertools.pairwise(branch))
        assert span["start"][1] <= branch[0][0] and branch[-1][1] <= span["end"][0]
