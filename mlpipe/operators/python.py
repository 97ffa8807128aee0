"""Operators that call a Python function: plain, branching, and short-circuiting."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from mlpipe.core.branching import branch_skips, short_circuit_skips
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import DagDefinitionError


@functools.lru_cache(maxsize=4096)
def _signature(fn: Callable[..., Any]) -> tuple[tuple[str, ...], bool]:
    params = inspect.signature(fn).parameters.values()
    names = tuple(p.name for p in params
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def determine_kwargs(fn: Callable[..., Any], op_args: Sequence[Any],
                     op_kwargs: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``fn``: ``op_kwargs``, plus context entries its parameters name.

    A function with ``**kwargs`` receives the whole context; a parameter filled by
    ``op_args`` or ``op_kwargs`` keeps that value.
    """
    names, var_kw = _signature(fn)
    if var_kw:
        base = {k: v for k, v in context.items() if k not in names[: len(op_args)]}
        return {**base, **op_kwargs}
    kwargs = dict(op_kwargs)
    for name in names[len(op_args):]:
        if name not in kwargs and name in context:
            kwargs[name] = context[name]
    return kwargs


class PythonOperator(BaseOperator):
    """Calls ``python_callable(*op_args, **op_kwargs)``; the return value becomes XCom.

    Parameters named like context keys (``ti``, ``ds``, ``params``...) or ``**kwargs`` get the
    run's context.
    """

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    ui_color = "#ffefeb"

    def __init__(
        self,
        task_id: str,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(
                f"task {self.task_id!r}: python_callable must be callable, got "
                f"{type(python_callable).__name__}"
            )
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = dict(templates_dict) if templates_dict is not None else None
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: Context) -> Any:
        context["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, self.op_kwargs, context)
        return self.python_callable(*self.op_args, **kwargs)


class BranchPythonOperator(PythonOperator):
    """Its callable returns the task id(s) to follow; other direct downstream tasks skip."""

    ui_color = "#ffd8cc"

    def downstream_to_skip(self, result: Any, context: Context) -> Collection[str]:
        return branch_skips(self, result)


class ShortCircuitOperator(PythonOperator):
    """If its callable returns a falsy value, everything downstream is skipped.

    With ``ignore_downstream_trigger_rules=False`` only the direct downstream tasks are
    skipped and the tasks after them follow their own trigger rules.
    """

    ui_color = "#f0f0d8"

    def __init__(self, task_id: str, *, ignore_downstream_trigger_rules: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def downstream_to_skip(self, result: Any, context: Context) -> Collection[str]:
        return short_circuit_skips(self, result,
                                   ignore_trigger_rules=self.ignore_downstream_trigger_rules)
