"""Small DAGs shared by the core tests."""

from __future__ import annotations

import pytest
from planner_support import add, empty, numbers, total

from mlpipe import DAG, chain
from mlpipe.operators import EmptyOperator


@pytest.fixture
def diamond() -> DAG:
    """``start >> [left, right] >> end``."""
    with DAG("diamond") as built:
        start = EmptyOperator(task_id="start")
        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        end = EmptyOperator(task_id="end")
        start >> [left, right] >> end  # type: ignore[operator]
    return built


@pytest.fixture
def chain3() -> DAG:
    """``a >> b >> c``."""
    with DAG("chain3") as built:
        chain(empty("a"), empty("b"), empty("c"))
    return built


@pytest.fixture
def mapped() -> DAG:
    """``numbers >> add.expand(x=numbers) >> total(add)``: a mapped task and its reducer."""
    with DAG("mapped") as built:
        total(add.expand(x=numbers()))
    return built
