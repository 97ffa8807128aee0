"""Which DAG and task group new tasks join: the ``with`` blocks currently open.

Kept in context variables, so threads and asyncio tasks never see each other's DAGs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.core.task_group import TaskGroup

_dag_stack: ContextVar[tuple[DAG, ...]] = ContextVar("mlpipe_dag_stack", default=())
_group_stack: ContextVar[tuple[TaskGroup, ...]] = ContextVar("mlpipe_group_stack", default=())
_collector: ContextVar[list[DAG] | None] = ContextVar("mlpipe_dag_collector", default=None)


def current_dag() -> DAG | None:
    """The innermost DAG opened with ``with``, if any."""
    stack = _dag_stack.get()
    return stack[-1] if stack else None


def current_group() -> TaskGroup | None:
    """The innermost task group opened with ``with``, if any."""
    stack = _group_stack.get()
    return stack[-1] if stack else None


def push_dag(dag: DAG) -> None:
    _dag_stack.set((*_dag_stack.get(), dag))
    _group_stack.set((*_group_stack.get(), dag.task_group))


def pop_dag() -> None:
    _dag_stack.set(_dag_stack.get()[:-1])
    _group_stack.set(_group_stack.get()[:-1])


def push_group(group: TaskGroup) -> None:
    _group_stack.set((*_group_stack.get(), group))


def pop_group() -> None:
    _group_stack.set(_group_stack.get()[:-1])


def register_dag(dag: DAG) -> None:
    """Tell a running DAG-file import about a DAG that was just defined."""
    collected = _collector.get()
    if collected is not None and all(d is not dag for d in collected):
        collected.append(dag)


@contextmanager
def collecting_dags() -> Iterator[list[DAG]]:
    """Collect every DAG defined inside the block (used while importing DAG files)."""
    found: list[DAG] = []
    token = _collector.set(found)
    try:
        yield found
    finally:
        _collector.reset(token)
