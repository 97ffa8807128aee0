"""Expanding mapped tasks and groups: the lists they map over and each instance's values.

The resolved lists are kept on the run (``DagRun.expansions``), so the driver resolves them
once and every instance (and every forked child) reads its own slice.
"""

from __future__ import annotations

import copy
from typing import Any

from mlpipe.core.mapping import MappedOperator, mapped_length, values_at
from mlpipe.core.operator import BaseOperator
from mlpipe.core.xcom_arg import XComArg
from mlpipe.errors import ExpansionError
from mlpipe.runtime.models import DagRun

__all__ = ["ExpansionError", "expansion_length", "expansion_of", "instance_operator",
           "instance_values", "resolve_expand_input"]


def resolve_expand_input(run: DagRun, owner: str, expand_input: dict[str, Any]
                         ) -> dict[str, list[Any]]:
    """The lists a mapped task or group maps over, with upstream outputs pulled."""
    resolved: dict[str, list[Any]] = {}
    for name, value in expand_input.items():
        if isinstance(value, XComArg):
            value = run.pull(value.operator.task_id, value.key, requester=None)
            if isinstance(value, dict):
                value = [[k, v] for k, v in value.items()]
            if not isinstance(value, list):
                raise ExpansionError(
                    f"cannot expand {owner}: argument {name!r} got {type(value).__name__} "
                    f"{value!r} from an upstream task; it must return a list or dict"
                )
        resolved[name] = list(value)
    return resolved


def expansion_length(resolved: dict[str, list[Any]]) -> int:
    return mapped_length([len(v) for v in resolved.values()])


def expansion_of(run: DagRun, owner: str, expand_input: dict[str, Any]
                 ) -> dict[str, list[Any]]:
    """``resolve_expand_input``, once per run (the driver's result reaches forked children)."""
    cached = run.expansions.get(owner)
    if cached is None:
        sources = frozenset(v.operator.task_id for v in expand_input.values()
                            if isinstance(v, XComArg))
        cached = run.expansions[owner] = (sources,
                                          resolve_expand_input(run, owner, expand_input))
    return cached[1]


def instance_values(run: DagRun, owner: str, expand_input: dict[str, Any], map_index: int
                    ) -> dict[str, Any]:
    """One instance's mapped values, its own copies of those pulled from upstream XComs.

    The resolved lists are kept on the run (``DagRun.expansions``): resolving them again
    for every instance read and decoded the whole upstream output each time, quadratic in
    the number of instances.
    """
    values = values_at(expansion_of(run, owner, expand_input), map_index)
    for name, value in expand_input.items():
        if isinstance(value, XComArg):  # decoded JSON: a task may change it in place
            values[name] = copy.deepcopy(values[name])
    return values


def instance_operator(run: DagRun, task: BaseOperator, map_index: int) -> BaseOperator:
    """A private copy of the task for one instance (mapped tasks get their values)."""
    if isinstance(task, MappedOperator):
        return task.unmap(instance_values(run, repr(task), task.expand_input, map_index))
    return copy.copy(task)
