"""``RegisterModelOperator``: a new version in the MLflow Model Registry, with lineage tags."""

from __future__ import annotations

import logging
from typing import Any

from mlpipe.core.operator import BaseOperator, Context
from mlpipe.operators.artifact_args import uri_of

log = logging.getLogger("mlpipe.task")


class RegisterModelOperator(BaseOperator):
    """Register ``model_uri`` under ``name``; returns ``models:/<name>/<version>``.

    Idempotent: a model already registered under ``name`` returns its existing version.

    The version carries the training run's ``mlpipe.*`` tags (DAG, run, task, try, git
    commit, config hash) and this task's DAG run, so a deployed model traces back to the
    run and data that made it.
    """

    template_fields = ("model_uri", "name")

    def __init__(self, task_id: str, *, model_uri: Any, name: str, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.model_uri = model_uri
        self.name = name

    def execute(self, context: Context) -> str:
        from mlpipe.tracking.models import register_model

        tracking_uri = context["mlflow_run"].client.tracking_uri
        tags = {"mlpipe.registered_by_dag_id": context["dag"].dag_id,
                "mlpipe.registered_by_run_id": context["run_id"]}
        version = register_model(tracking_uri, uri_of(self.model_uri), self.name, tags)
        uri = f"models:/{self.name}/{version}"
        log.info("registered %s as %s", uri_of(self.model_uri), uri)
        return uri
