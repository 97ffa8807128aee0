"""Small DAGs shared by the core tests."""

from __future__ import annotations

import pytest

from mlpipe import DAG
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
