"""Rendering a task's template fields and turning its return value into XComs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.core.templating import environment_for, holds_template, render_value
from mlpipe.core.xcom_arg import RETURN_VALUE, DagParam, MappedArgument, XComArg
from mlpipe.errors import XComError
from mlpipe.runtime.expansion import instance_values
from mlpipe.runtime.models import DagRun, TaskInstance

__all__ = ["make_resolver", "render_fields", "result_xcoms", "short_repr"]

log = logging.getLogger("mlpipe.task")


def make_resolver(run: DagRun, ti: TaskInstance, context: Context
                  ) -> Callable[[Any], tuple[bool, Any]]:
    """Replaces XComArgs, mapped-group arguments and DAG params with their run-time values."""
    def resolve(value: Any) -> tuple[bool, Any]:
        if isinstance(value, XComArg):
            # As in Airflow: a missing return value resolves to None, a missing key fails.
            strict = value.key != RETURN_VALUE
            return True, run.pull(value.operator.task_id, value.key, requester=ti,
                                  strict=strict)
        if isinstance(value, MappedArgument):
            group = value.group
            return True, instance_values(run, f"task group {group.group_id!r}",
                                         group.expand_input or {}, ti.map_index)[value.name]
        if isinstance(value, DagParam):
            return True, context["params"].get(value.name, value.default)
        return False, None

    return resolve


def render_fields(op: BaseOperator, context: Context,
                  resolve: Callable[[Any], tuple[bool, Any]]) -> None:
    """Render every template field in place, logging the templates that rendered.

    Arguments that only took upstream values (XComs, DAG params) are not logged: Airflow
    logs neither, and with TaskFlow it would be a line for every task.
    """
    env = None
    for name in op.template_fields:
        value = getattr(op, name, None)
        if value is None:
            continue
        # Jinja (tens of ms to import) only once a field holds a template: a TaskFlow task's
        # arguments are usually plain values and XComArgs, which render_value never renders
        if env is None and holds_template(value, op.template_ext):
            env = environment_for(op.dag)
        rendered = render_value(value, context, env=env,  # type: ignore[arg-type]
                                template_ext=op.template_ext, resolve=resolve, field=name)
        if rendered is not value and rendered != value \
                and holds_template(value, op.template_ext):
            log.info("Rendered %s: %s", name, short_repr(rendered))
        setattr(op, name, rendered)


def short_repr(value: Any, limit: int = 1000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def result_xcoms(run: DagRun, ti: TaskInstance, op: BaseOperator, result: Any
                 ) -> dict[str, str]:
    """Serialized XComs of a return value (one per key with ``multiple_outputs``)."""
    if not op.do_xcom_push or result is None:
        return {}
    out: dict[str, str] = {}
    if op.multiple_outputs:
        if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
            raise XComError(
                f"task {op.task_id!r} has multiple_outputs=True but returned "
                f"{type(result).__name__}; return a dict with string keys"
            )
        for key, value in result.items():
            out[key] = run.serialize_xcom(ti.task_id, ti.map_index, key, value)
    out[RETURN_VALUE] = run.serialize_xcom(ti.task_id, ti.map_index, RETURN_VALUE, result)
    return out
