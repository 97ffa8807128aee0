"""Helpers shared by the ``RunPlanner`` tests: action builders, tiny tasks, state names."""

from __future__ import annotations

from mlpipe import task
from mlpipe.core.planning import Action
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.operators import EmptyOperator

F, K, OK, UF = S.FAILED, S.SKIPPED, S.SUCCESS, S.UPSTREAM_FAILED


def run(task_id: str, map_index: int = -1) -> Action:
    return Action("run", task_id, map_index)


def ordered(actions: list[Action]) -> list[Action]:
    """Actions sorted, where a test does not care in which order siblings come."""
    return sorted(actions, key=lambda a: (a.kind, a.task_id, a.map_index, a.group_id))


def empty(task_id: str, **kwargs: object) -> EmptyOperator:
    return EmptyOperator(task_id=task_id, **kwargs)  # type: ignore[arg-type]


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def total(values: list[int]) -> int:
    return sum(values)
