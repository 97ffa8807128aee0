"""Dynamic task mapping: ``.partial(...).expand(...)`` makes one task instance per value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlpipe.core.operator import BaseOperator, accepted_arguments, apply_defaults
from mlpipe.core.xcom_arg import MappedArgument, XComArg
from mlpipe.errors import InvalidOperatorArgumentError, MappingError

#: What ``.expand()`` takes per argument: a literal list/tuple/dict, or a run-time reference.
ExpandValue = list[Any] | tuple[Any, ...] | dict[Any, Any] | XComArg | MappedArgument


def check_expand_input(owner: str, expand_input: Mapping[str, Any]) -> dict[str, Any]:
    """Reject what cannot be mapped over, naming the argument and its type."""
    if not expand_input:
        raise MappingError(f"{owner}: .expand() needs at least one keyword argument to map over")
    checked: dict[str, Any] = {}
    for name, value in expand_input.items():
        if isinstance(value, dict):
            value = [[k, v] for k, v in value.items()]
        if not isinstance(value, list | tuple | XComArg | MappedArgument):
            raise MappingError(
                f"{owner}: cannot map over argument {name!r} of type {type(value).__name__} "
                f"({value!r}); pass a list, tuple or dict literal, or an upstream task's output"
            )
        checked[name] = list(value) if isinstance(value, tuple) else value
    return checked


def mapped_length(lengths: Sequence[int]) -> int:
    """Number of instances for the cartesian product of the mapped arguments."""
    total = 1
    for n in lengths:
        total *= n
    return total


def values_at(resolved: Mapping[str, Sequence[Any]], map_index: int) -> dict[str, Any]:
    """The mapped arguments' values for one ``map_index`` (last argument varies fastest)."""
    out: dict[str, Any] = {}
    rest = map_index
    for name in reversed(list(resolved)):
        seq = resolved[name]
        rest, pos = divmod(rest, len(seq))
        out[name] = seq[pos]
    return dict(reversed(list(out.items())))


class OperatorPartial:
    """An operator class with some arguments fixed, waiting for ``.expand()``."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise MappingError(f"{operator_class.__name__}.partial() needs task_id=")
        self.operator_class = operator_class
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> MappedOperator:
        """One task instance per value (or combination of values) of ``mapped``."""
        cls = self.operator_class
        accepted, open_ended = accepted_arguments(cls)
        unknown = set(mapped) - accepted
        if unknown and not open_ended:
            raise InvalidOperatorArgumentError(cls.__name__, self.kwargs["task_id"], unknown,
                                               accepted)
        both = set(mapped) & set(self.kwargs)
        if both:
            raise MappingError(f"{cls.__name__}(task_id={self.kwargs['task_id']!r}): "
                               f"{sorted(both)} given to both .partial() and .expand()")
        expand_input = check_expand_input(f"{cls.__name__}({self.kwargs['task_id']!r})", mapped)
        return MappedOperator.create(cls, dict(self.kwargs), expand_input)


class MappedOperator(BaseOperator):
    """A task whose instances are made at run time, one per mapped value.

    ``operator_class`` is built for each instance from ``partial_kwargs`` plus that
    instance's values; with ``expand_into`` set, the values go into that dict argument
    (``op_kwargs`` for TaskFlow tasks) instead of being keyword arguments themselves.
    """

    is_mapped = True

    def __init__(self, task_id: str, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.operator_class: type[BaseOperator] = BaseOperator
        self.partial_kwargs: dict[str, Any] = {}
        self.expand_input: dict[str, Any] = {}
        self.expand_into: str | None = None

    @classmethod
    def create(
        cls,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: dict[str, Any],
        *,
        expand_into: str | None = None,
    ) -> MappedOperator:
        """Build the mapped task node; base-operator arguments are honoured as usual."""
        defaulted = apply_defaults(operator_class, partial_kwargs)
        base_names, _ = accepted_arguments(BaseOperator)
        base_kwargs = {k: v for k, v in defaulted.items() if k in base_names}
        node: MappedOperator = cls.__new__(cls)
        MappedOperator.__init__(node, **base_kwargs)
        node.operator_class = operator_class
        node.partial_kwargs = {k: v for k, v in defaulted.items() if k not in ("dag", "task_group")}
        node.expand_input = expand_input
        node.expand_into = expand_into
        if node.task_group is not None and node.task_group.mapped_group() is not None:
            for value in expand_input.values():
                if isinstance(value, XComArg | MappedArgument):
                    raise MappingError(
                        f"task {node.task_id!r}: mapping inside the mapped task group "
                        f"{node.task_group.mapped_group().group_id!r} is not supported; "  # type: ignore[union-attr]
                        "map the group or the task, not both"
                    )
        node._attach()
        return node

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    def _reference_fields(self) -> Iterable[str]:
        return ("partial_kwargs", "expand_input")

    def unmap(self, values: Mapping[str, Any]) -> BaseOperator:
        """A plain operator for one map index, not attached to any DAG."""
        kwargs = dict(self.partial_kwargs)
        if self.expand_into:
            kwargs[self.expand_into] = {**kwargs.get(self.expand_into, {}), **values}
        else:
            kwargs.update(values)
        kwargs["task_id"] = self.task_id
        kwargs["dag"] = self._dag  # root group of the DAG: the id is not prefixed again
        op = self.operator_class.__new__(self.operator_class)
        op.__init__(**kwargs)  # type: ignore[misc]
        op._dag = self._dag
        op.task_group = self.task_group
        op._upstream = self._upstream
        op._downstream = self._downstream
        return op
