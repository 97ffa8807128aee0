"""References to values that upstream tasks produce at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpipe.core.dependencies import DependencyMixin
from mlpipe.core.nested import find_instances

if TYPE_CHECKING:
    from mlpipe.core.operator import BaseOperator
    from mlpipe.core.task_group import TaskGroup

RETURN_VALUE = "return_value"


class XComArg(DependencyMixin):
    """The XCom ``key`` of ``operator``, resolved when a downstream task runs.

    Passing it to another task makes that task depend on ``operator``. ``arg["k"]`` selects
    another key (one of the keys of a ``multiple_outputs`` task, for example).
    """

    def __init__(self, operator: BaseOperator, key: str = RETURN_VALUE) -> None:
        self.operator = operator
        self.key = key

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self.operator]

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __iter__(self) -> Any:
        raise TypeError(
            f"XComArg of task {self.operator.task_id!r} cannot be iterated while the DAG is "
            "defined: its value exists only at run time; map over it with .expand() instead"
        )

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, XComArg)
            and other.operator is self.operator
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))


class MappedArgument:
    """Inside a mapped task group: the group's ``name`` argument for one map index."""

    def __init__(self, group: TaskGroup, name: str) -> None:
        self.group = group
        self.name = name

    def __repr__(self) -> str:
        return f"MappedArgument({self.group.group_id!r}, {self.name!r})"


class DagParam:
    """A ``@dag`` function argument: the value of ``params[name]`` at run time."""

    def __init__(self, name: str, default: Any) -> None:
        self.name = name
        self.default = default

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"


def find_references(value: Any) -> list[XComArg | MappedArgument]:
    """Every XComArg and MappedArgument inside ``value`` (lists, tuples, sets, dicts)."""
    return find_instances(value, (XComArg, MappedArgument))
