"""The template and ``execute`` context of a task instance."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from mlpipe.core.params import resolve_params
from mlpipe.core.templating import Macros
from mlpipe.errors import TemplateRenderError

if TYPE_CHECKING:
    from mlpipe.core.operator import BaseOperator, Context
    from mlpipe.runtime.models import DagRun, TaskInstance


class _Variables:
    """``var.value.NAME`` / ``var.json.NAME``: read from ``MLPIPE_VAR_<NAME>``."""

    def __init__(self, as_json: bool) -> None:
        self._as_json = as_json

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def get(self, name: str, default_var: Any = ...) -> Any:
        raw = os.environ.get(f"MLPIPE_VAR_{name.upper()}")
        if raw is None:
            if default_var is not ...:
                return default_var
            raise TemplateRenderError(
                f"variable {name!r} is not set; set MLPIPE_VAR_{name.upper()} in the environment"
            )
        if not self._as_json:
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TemplateRenderError(f"variable {name!r} is not valid JSON: {exc}") from None


class VariableAccessor:
    value = _Variables(as_json=False)
    json = _Variables(as_json=True)


def build_context(run: DagRun, ti: TaskInstance, task: BaseOperator) -> Context:
    """Everything a template or ``execute`` may use, as Airflow names it."""
    logical = run.logical_date
    ds = logical.strftime("%Y-%m-%d")
    params = run.params if not task.params else resolve_params(
        {**(run.dag.params if run.dag else {}), **task.params}, run.conf
    )
    return {
        "dag": run.dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": run.run_id,
        "dag_run": run,
        "logical_date": logical,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "params": params,
        "conf": run.conf,
        "macros": Macros,
        "var": VariableAccessor,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
    }
