"""Parent and child MLflow runs of DAG runs and task tries, through ``MlflowClient``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlpipe.tracking.config import TrackingConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger("mlpipe.tracking")

TAG_PARENT = "mlflow.parentRunId"


def client_for(config: TrackingConfig) -> MlflowClient:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=config.tracking_uri)


def experiment_id(client: MlflowClient, config: TrackingConfig, name: str) -> str:
    """The experiment ``name``, created with an absolute artifact location if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    from mlflow.exceptions import MlflowException

    try:
        return str(client.create_experiment(name, artifact_location=f"{config.artifact_root}/"
                                                                     f"{name}"))
    except MlflowException:  # created meanwhile by another process
        again = client.get_experiment_by_name(name)
        assert again is not None
        return str(again.experiment_id)


def start_run(client: MlflowClient, experiment: str, *, name: str, tags: dict[str, str],
              parent: str | None = None) -> str:
    """A new RUNNING run (nested under ``parent`` if given); returns its id."""
    all_tags = dict(tags)
    if parent is not None:
        all_tags[TAG_PARENT] = parent
    run = client.create_run(experiment, run_name=name, tags=all_tags)
    return str(run.info.run_id)


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """``status``: FINISHED, FAILED or KILLED."""
    client.set_terminated(run_id, status=status)


class LazyMlflowRun:
    """``context["mlflow_run"]``: the task try's child run, created on first use.

    ``start`` creates it (and the DAG run's parent if there is none yet) and returns its id.
    The methods mirror ``MlflowClient``'s, bound to this run: ``log_param(s)``,
    ``log_metric(s)`` (batched into one call), ``set_tag``, ``log_artifact``.
    """

    def __init__(self, start: Callable[[], tuple[MlflowClient, str]]) -> None:
        self._start = start
        self._client: MlflowClient | None = None
        self._run_id: str | None = None
        self._pending: list[Any] = []  # asynchronous metric writes not yet confirmed

    @property
    def started(self) -> bool:
        return self._run_id is not None

    def _ensure(self) -> tuple[MlflowClient, str]:
        if self._client is None or self._run_id is None:
            self._client, self._run_id = self._start()
        return self._client, self._run_id

    @property
    def run_id(self) -> str:
        return self._ensure()[1]

    @property
    def client(self) -> MlflowClient:
        return self._ensure()[0]

    def log_param(self, key: str, value: Any) -> None:
        client, run_id = self._ensure()
        client.log_param(run_id, key, value)

    def log_params(self, params: dict[str, Any]) -> None:
        self.log_batch(params=params)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        client, run_id = self._ensure()
        client.log_metric(run_id, key, value, step=step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.log_batch(metrics=metrics, step=step)

    def log_batch(self, *, metrics: dict[str, float] | None = None,
                  params: dict[str, Any] | None = None, step: int | None = None) -> None:
        """Metrics and params in one request (MLflow's batch API)."""
        import time

        from mlflow.entities import Metric, Param

        client, run_id = self._ensure()
        now = int(time.time() * 1000)
        # Stepped metrics (per epoch) are written in the background so training does not
        # wait on the store; flush() (called when the try ends) waits for them.
        background = step is not None and not params
        operation = client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step or 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            synchronous=not background,
        )
        if background and operation is not None:
            self._pending.append(operation)

    def flush(self) -> None:
        """Wait until every background metric write has reached the store."""
        pending, self._pending = self._pending, []
        for operation in pending:
            operation.wait()

    def set_tag(self, key: str, value: Any) -> None:
        client, run_id = self._ensure()
        client.set_tag(run_id, key, str(value))

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        client, run_id = self._ensure()
        client.log_artifact(run_id, local_path, artifact_path)

    def __repr__(self) -> str:
        return f"<LazyMlflowRun {self._run_id or '(not started)'}>"
