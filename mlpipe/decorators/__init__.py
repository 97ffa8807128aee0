"""TaskFlow: ``@task`` and its flavours turn plain functions into tasks.

May import: mlpipe.core, mlpipe.operators, mlpipe.sensors, mlpipe.errors.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from mlpipe.core import authoring_context as ctx
from mlpipe.core.mapping import MappedOperator, check_expand_input
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.core.templating import environment_for, render_value
from mlpipe.core.xcom_arg import XComArg
from mlpipe.errors import (
    DagDefinitionError,
    InvalidOperatorArgumentError,
    MappingError,
    TaskError,
    TaskOutsideDagError,
)
from mlpipe.operators.bash import BashOperator
from mlpipe.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)
from mlpipe.sensors.python import PythonSensor

__all__ = ["task"]


class _BashDecoratedOperator(BashOperator):
    """``@task.bash``: the function returns the command, which is rendered then run."""

    template_fields = ("op_args", "op_kwargs", "env", "cwd")

    def __init__(self, task_id: str, *, python_callable: Callable[..., Any],
                 op_args: list[Any] | None = None, op_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(task_id, bash_command="<set when the task runs>", **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def execute(self, context: Context) -> Any:
        kwargs = determine_kwargs(self.python_callable, self.op_args, self.op_kwargs, context)
        command = self.python_callable(*self.op_args, **kwargs)
        if not isinstance(command, str) or not command.strip():
            raise TaskError(
                f"@task.bash function {self.python_callable.__name__!r} returned {command!r}; "
                "it must return a non-empty command string"
            )
        self.bash_command = render_value(
            command, context, env=environment_for(self.dag), template_ext=self.template_ext,
            resolve=lambda v: (False, None), field="bash_command",
        )
        return super().execute(context)


def _infers_multiple_outputs(fn: Callable[..., Any]) -> bool:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable forward references: fall back to the raw text
        raw = fn.__annotations__.get("return")
        text = raw.replace(" ", "").lower() if isinstance(raw, str) else ""
        return text.startswith(("dict", "typing.dict", "mapping"))
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, Mapping)


class TaskDecorator:
    """A function wrapped by ``@task``: calling it inside a DAG adds a task."""

    def __init__(self, function: Callable[..., Any], operator_class: type[BaseOperator],
                 kwargs: dict[str, Any]) -> None:
        if not callable(function):
            raise DagDefinitionError(f"@task needs a function, got {function!r}")
        self.function = function
        self.operator_class = operator_class
        self.kwargs = kwargs
        functools.update_wrapper(self, function)

    # -- building tasks -----------------------------------------------------------------------

    def override(self, **kwargs: Any) -> TaskDecorator:
        """The same task with other operator arguments (``task_id``, ``retries``, ...)."""
        return TaskDecorator(self.function, self.operator_class, {**self.kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        self._check_call(args, kwargs)
        op = self.operator_class(
            **self._operator_kwargs(), python_callable=self.function, op_args=list(args),
            op_kwargs=kwargs,
        )
        return XComArg(op)

    def partial(self, **kwargs: Any) -> _TaskPartial:
        return _TaskPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        """One task instance per value of ``mapped`` (lists, or an upstream's output)."""
        return self.partial().expand(**mapped)

    def _operator_kwargs(self) -> dict[str, Any]:
        group = self.kwargs.get("task_group") or ctx.current_group()
        dag = self.kwargs.get("dag") or ctx.current_dag() or (group.dag if group else None)
        name = self.function.__name__
        if dag is None:
            raise TaskOutsideDagError(
                f"@task {name!r} was called outside a DAG; call it inside a @dag function "
                "or a 'with DAG(...)' block"
            )
        kwargs = dict(self.kwargs)
        if "task_id" not in kwargs:
            kwargs["task_id"] = _unique_task_id(dag, name)
        if "multiple_outputs" not in kwargs:
            kwargs["multiple_outputs"] = _infers_multiple_outputs(self.function)
        return kwargs

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            inspect.signature(self.function).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise DagDefinitionError(
                f"@task {self.function.__name__!r} called with wrong arguments: {exc}"
            ) from None


class _TaskPartial:
    def __init__(self, decorator: TaskDecorator, kwargs: dict[str, Any]) -> None:
        self.decorator = decorator
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> XComArg:
        deco = self.decorator
        both = set(self.kwargs) & set(mapped)
        if both:
            raise MappingError(f"@task {deco.function.__name__!r}: {sorted(both)} given to both "
                               ".partial() and .expand()")
        deco._check_call((), {**self.kwargs, **mapped})
        names = set(inspect.signature(deco.function).parameters)
        has_var_kw = any(p.kind is p.VAR_KEYWORD
                         for p in inspect.signature(deco.function).parameters.values())
        unknown = set(mapped) - names
        if unknown and not has_var_kw:
            raise InvalidOperatorArgumentError(f"@task {deco.function.__name__}",
                                               deco.function.__name__, unknown, names)
        expand_input = check_expand_input(f"@task {deco.function.__name__!r}", mapped)
        partial_kwargs = {**deco._operator_kwargs(), "python_callable": deco.function,
                          "op_args": [], "op_kwargs": dict(self.kwargs)}
        node = MappedOperator.create(deco.operator_class, partial_kwargs, expand_input,
                                     expand_into="op_kwargs")
        return XComArg(node)


def _unique_task_id(dag: Any, name: str) -> str:
    group = ctx.current_group()
    full = group.child_id(name) if group is not None else name
    if full not in dag.task_dict:
        return name
    n = 1
    while (group.child_id(f"{name}__{n}") if group is not None else f"{name}__{n}") in \
            dag.task_dict:
        n += 1
    return f"{name}__{n}"


def _make(operator_class: type[BaseOperator]) -> Callable[..., Any]:
    def decorator(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return TaskDecorator(python_callable, operator_class, kwargs)
        return lambda fn: TaskDecorator(fn, operator_class, kwargs)

    return decorator


class _TaskNamespace:
    """``@task``, ``@task.python``, ``@task.branch``, ``@task.short_circuit``, ``@task.bash``,
    ``@task.sensor`` (the function is a ``PythonSensor``'s poke: ``poke_interval``, ``mode``,
    ``timeout``... as arguments)."""

    python = staticmethod(_make(PythonOperator))
    branch = staticmethod(_make(BranchPythonOperator))
    short_circuit = staticmethod(_make(ShortCircuitOperator))
    bash = staticmethod(_make(_BashDecoratedOperator))
    sensor = staticmethod(_make(PythonSensor))

    def __call__(self, python_callable: Callable[..., Any] | None = None,
                 **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)


task = _TaskNamespace()
