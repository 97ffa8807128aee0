"""Which downstream tasks a branch or short-circuit skips."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlpipe.core.task_group import TaskGroup
from mlpipe.errors import TaskError

if TYPE_CHECKING:
    from mlpipe.core.operator import BaseOperator


def branch_skips(task: BaseOperator, followed: Any) -> set[str]:
    """Direct downstream task ids of ``task`` that a branch returning ``followed`` skips.

    ``followed`` is a task id, a task group id (meaning that group's first tasks), a list of
    them, or None (skip every direct downstream task).
    """
    if followed is None:
        chosen: list[str] = []
    elif isinstance(followed, str):
        chosen = [followed]
    elif isinstance(followed, Iterable):
        chosen = list(followed)
    else:
        raise TaskError(
            f"branch task {task.task_id!r} returned {followed!r}; return a task id, a task "
            "group id, a list of them, or None"
        )
    dag = task.dag
    groups = _groups_by_id(dag.task_group) if dag is not None else {}
    known = set(dag.task_dict) if dag is not None else set()
    expanded: set[str] = set()
    for item in chosen:
        if not isinstance(item, str):
            raise TaskError(f"branch task {task.task_id!r} returned {item!r}, not a task id")
        if item in groups:
            expanded.update(t.task_id for t in groups[item].roots)
        elif item in known:
            expanded.add(item)
        else:
            raise TaskError(
                f"branch task {task.task_id!r} returned {item!r}, which is not a task or "
                f"task group of the DAG; its downstream tasks: {sorted(task.downstream_task_ids)}"
            )
    # A direct downstream task that is also downstream of a followed task is not skipped
    # (branch -> join and branch -> task1 -> join: following task1 runs join too), as in
    # Airflow; only the tasks of the branches not taken are.
    direct = task.downstream_task_ids
    reached: set[str] = set()
    for task_id in expanded:
        if dag is not None and task_id in dag.task_dict:
            reached.update(t.task_id for t in dag.task_dict[task_id].get_descendants())
    return direct - expanded - (reached & direct)


def short_circuit_skips(task: BaseOperator, condition: Any, *, ignore_trigger_rules: bool
                        ) -> set[str]:
    """Everything downstream when ``condition`` is falsy (or only direct downstream)."""
    if condition:
        return set()
    if ignore_trigger_rules:
        return {t.task_id for t in task.get_descendants()}
    return set(task.downstream_task_ids)


def _groups_by_id(root: TaskGroup) -> dict[str, TaskGroup]:
    found: dict[str, TaskGroup] = {}
    stack = [root]
    while stack:
        group = stack.pop()
        for child in group.children.values():
            if isinstance(child, TaskGroup) and child.group_id is not None:
                found[child.group_id] = child
                stack.append(child)
    return found
