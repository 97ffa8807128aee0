"""The template and ``execute`` context of a task instance."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlpipe.connections.backends import EnvSecretsBackend, SecretsBackend, get_variable
from mlpipe.core.params import resolve_params
from mlpipe.core.templating import Macros
from mlpipe.errors import TemplateRenderError, VariableNotFoundError

if TYPE_CHECKING:
    from mlpipe.core.operator import BaseOperator, Context
    from mlpipe.runtime.models import DagRun, TaskInstance
    from mlpipe.store.protocols import TryStore


class _Variables:
    """``var.value.NAME`` / ``var.json.NAME``: ``MLPIPE_VAR_<NAME>``, then the metadata DB."""

    def __init__(self, lookup: Callable[[], list[SecretsBackend]], as_json: bool) -> None:
        self._lookup = lookup
        self._as_json = as_json

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def get(self, name: str, default_var: Any = ...) -> Any:
        """The variable ``name``, or ``default_var`` if it is not set anywhere."""
        try:
            return get_variable(name, deserialize_json=self._as_json, backends=self._lookup())
        except VariableNotFoundError as exc:
            if default_var is not ...:
                return default_var
            raise TemplateRenderError(str(exc)) from None


class VariableAccessor:
    """``var`` in templates and the context: ``var.value.NAME`` (text), ``var.json.NAME``.

    Looks in the environment, then the run's metadata database (a store with an
    ``engine``), then the configured metadata database when that is another one
    (``dag.test()`` runs on a store in memory, which holds no variables). The database
    backends are imported on the first look-up: most tasks never read a variable.
    """

    def __init__(self, store: TryStore | None) -> None:
        self._store = store
        self._backends: list[SecretsBackend] | None = None
        self.value = _Variables(self._search_path, as_json=False)
        self.json = _Variables(self._search_path, as_json=True)

    def _search_path(self) -> list[SecretsBackend]:
        if self._backends is None:
            from mlpipe.connections.metastore_backend import (
                MetastoreSecretsBackend,
                SecretsStore,
            )

            configured = MetastoreSecretsBackend()
            backends: list[SecretsBackend] = [EnvSecretsBackend()]
            engine = getattr(self._store, "engine", None)
            if engine is not None:
                backends.append(SecretsStore(engine, fernet_key=configured.fernet_key,
                                             key_file=configured.key_file))
                if engine.url.render_as_string(hide_password=False) != configured.url:
                    backends.append(configured)
            else:
                backends.append(configured)
            self._backends = backends
        return self._backends


@functools.lru_cache(maxsize=256)
def _date_strings(logical: datetime) -> tuple[str, str, str, str]:
    """``ds``, ``ds_nodash``, ``ts``, ``ts_nodash`` (the same for every task of a run)."""
    ds = logical.strftime("%Y-%m-%d")
    return ds, ds.replace("-", ""), logical.isoformat(), logical.strftime("%Y%m%dT%H%M%S")


def build_context(run: DagRun, ti: TaskInstance, task: BaseOperator) -> Context:
    """Everything a template or ``execute`` may use, as Airflow names it."""
    logical = run.logical_date
    ds, ds_nodash, ts, ts_nodash = _date_strings(logical)
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
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": ts_nodash,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "params": params,
        "conf": run.conf,
        "macros": Macros,
        "var": VariableAccessor(run.store),
        "map_index": ti.map_index,
        "try_number": ti.try_number,
        "triggering_dataset_events": triggering_dataset_events(run.conf),
    }


def triggering_dataset_events(conf: Any) -> dict[str, list[dict[str, Any]]]:
    """The events that triggered a dataset-triggered run, by dataset URI (as Airflow's
    context key); empty for every other run."""
    events = conf.get("triggering_dataset_events") if isinstance(conf, dict) else None
    by_uri: dict[str, list[dict[str, Any]]] = {}
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and isinstance(event.get("uri"), str):
            by_uri.setdefault(event["uri"], []).append(event)
    return by_uri
