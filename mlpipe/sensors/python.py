"""``PythonSensor`` (and ``@task.sensor``): a Python function is the condition."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from mlpipe.core.operator import Context
from mlpipe.errors import DagDefinitionError
from mlpipe.operators.python import determine_kwargs
from mlpipe.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    """Done when ``python_callable(*op_args, **op_kwargs)`` returns something true, or a
    ``PokeReturnValue`` that is done (its ``xcom_value`` becomes the XCom). Parameters
    named like context keys get the context, as with ``PythonOperator``."""

    template_fields: ClassVar[tuple[str, ...]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(self, task_id: str, *, python_callable: Callable[..., Any],
                 op_args: Sequence[Any] | None = None, op_kwargs: Mapping[str, Any] | None = None,
                 templates_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not callable(python_callable):
            raise DagDefinitionError(f"sensor {self.task_id!r}: python_callable must be "
                                     f"callable, got {python_callable!r}")
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = dict(templates_dict) if templates_dict is not None else None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, self.op_kwargs, context)
        result = self.python_callable(*self.op_args, **kwargs)
        return result if isinstance(result, PokeReturnValue) else bool(result)
