"""Task groups: ``TaskGroup("g")`` and ``@task_group``; ids inside are prefixed ``g.``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mlpipe.core import authoring_context as ctx
from mlpipe.core.dependencies import DependencyMixin
from mlpipe.core.ids import validate_id
from mlpipe.core.mapping import check_expand_input
from mlpipe.core.xcom_arg import MappedArgument, XComArg
from mlpipe.errors import DuplicateTaskIdError, MappingError, TaskOutsideDagError

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.core.operator import BaseOperator


class TaskGroup(DependencyMixin):
    """A named set of tasks (and groups) that can be used as one node with ``>>``."""

    def __init__(
        self,
        group_id: str | None,
        *,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        add_suffix_on_collision: bool = False,
    ) -> None:
        self.prefix_group_id = prefix_group_id
        self.default_args = dict(default_args or {})
        self.tooltip = tooltip
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        self.expand_input: dict[str, Any] | None = None
        self.used_group_ids: set[str] = set()
        if group_id is None:  # the root group of a DAG
            self.group_id: str | None = None
            self.parent_group: TaskGroup | None = None
            self.dag = dag
            return
        validate_id("group_id", group_id)
        parent = parent_group or (dag.task_group if dag is not None else ctx.current_group())
        if parent is None:
            raise TaskOutsideDagError(
                f"TaskGroup {group_id!r} was created outside a DAG; create it inside "
                "'with DAG(...)' or pass dag="
            )
        self.parent_group = parent
        self.dag = parent.dag
        full_id = parent.child_id(group_id)
        root = self.dag.task_group if self.dag is not None else parent
        taken = self.dag is not None and full_id in self.dag.task_dict
        if full_id in root.used_group_ids or taken:
            if not add_suffix_on_collision:
                raise DuplicateTaskIdError(self.dag.dag_id if self.dag else "?", full_id)
            base, n = full_id, 1
            while f"{base}__{n}" in root.used_group_ids:
                n += 1
            full_id = f"{base}__{n}"
        root.used_group_ids.add(full_id)
        self.group_id = full_id
        parent.children[full_id] = self

    # -- ids and membership ----------

    def child_id(self, label: str) -> str:
        """The full id of a child called ``label``."""
        if self.group_id and self.prefix_group_id:
            return f"{self.group_id}.{label}"
        if self.group_id and self.parent_group is not None:
            return self.parent_group.child_id(label)
        return label

    def add(self, task: BaseOperator) -> None:
        self.children[task.task_id] = task

    def iter_tasks(self) -> Iterator[BaseOperator]:
        """Every task in this group and its subgroups."""
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child.iter_tasks()
            else:
                yield child

    def inherited_default_args(self) -> dict[str, Any]:
        chain: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            chain.append(group)
            group = group.parent_group
        merged: dict[str, Any] = {}
        for g in reversed(chain):
            merged.update(g.default_args)
        return merged

    def mapped_group(self) -> TaskGroup | None:
        """The innermost mapped group containing this one (itself included), if any."""
        group: TaskGroup | None = self
        while group is not None:
            if group.expand_input is not None:
                return group
            group = group.parent_group
        return None

    def expand_producers(self) -> list[BaseOperator]:
        """Tasks whose output this mapped group maps over."""
        return [v.operator for v in (self.expand_input or {}).values() if isinstance(v, XComArg)]

    # -- dependencies ----------

    @property
    def roots(self) -> list[BaseOperator]:
        members = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not (t.upstream_task_ids & members)]

    @property
    def leaves(self) -> list[BaseOperator]:
        members = {t.task_id for t in self.iter_tasks()}
        return [t for t in self.iter_tasks() if not (t.downstream_task_ids & members)]

    def __enter__(self) -> TaskGroup:
        ctx.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        ctx.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id!r}>"


class TaskGroupFactory:
    """What ``@task_group`` returns: call it to build the group, or ``.expand()`` to map it."""

    def __init__(self, function: Callable[..., Any], group_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.group_kwargs = group_kwargs
        self._partial: dict[str, Any] = {}
        functools.update_wrapper(self, function)

    def override(self, **group_kwargs: Any) -> TaskGroupFactory:
        return TaskGroupFactory(self.function, {**self.group_kwargs, **group_kwargs})

    def partial(self, **kwargs: Any) -> TaskGroupFactory:
        clone = TaskGroupFactory(self.function, self.group_kwargs)
        clone._partial = {**self._partial, **kwargs}
        return clone

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._build(args, {**self._partial, **kwargs}, expand_input=None)

    def expand(self, **mapped: Any) -> Any:
        """Build the group once; at run time its tasks get one instance per mapped value."""
        group_id = self.group_kwargs.get("group_id", self.function.__name__)
        expand_input = check_expand_input(f"task group {group_id!r}", mapped)
        for name, value in expand_input.items():
            if isinstance(value, MappedArgument):
                raise MappingError(f"task group {group_id!r}: nested mapped task groups are "
                                   f"not supported (argument {name!r})")
        return self._build((), dict(self._partial), expand_input=expand_input)

    def _build(self, args: tuple[Any, ...], kwargs: dict[str, Any],
               expand_input: dict[str, Any] | None) -> Any:
        if ctx.current_dag() is None and self.group_kwargs.get("dag") is None:
            raise TaskOutsideDagError(
                f"task group {self.function.__name__!r} was called outside a DAG; call it "
                "inside a @dag function or a 'with DAG(...)' block"
            )
        options = {"group_id": self.function.__name__, "add_suffix_on_collision": True,
                   **self.group_kwargs}
        group_id = options.pop("group_id")
        group = TaskGroup(group_id, **options)
        if expand_input is not None:
            group.expand_input = expand_input
            names = list(inspect.signature(self.function).parameters)
            unknown = set(expand_input) - set(names)
            if unknown:
                raise MappingError(f"task group {group.group_id!r} has no argument(s) "
                                   f"{sorted(unknown)}; its arguments: {names}")
            kwargs = {**kwargs, **{n: MappedArgument(group, n) for n in expand_input}}
        with group:
            retval = self.function(*args, **kwargs)
        if isinstance(retval, DependencyMixin):
            return retval
        return group


def task_group(
    python_callable: Callable[..., Any] | None = None, **group_kwargs: Any
) -> Any:
    """Decorate a function whose body creates tasks; calling it creates a ``TaskGroup``."""
    if python_callable is not None:
        return TaskGroupFactory(python_callable, group_kwargs)
    return lambda fn: TaskGroupFactory(fn, group_kwargs)
