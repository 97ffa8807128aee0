"""Logging and loading PyTorch models through MLflow (the only mlflow imports for models)."""

from __future__ import annotations

from typing import Any


def log_pytorch_model(tracking_uri: str, run_id: str, model: Any, *, input_example: Any,
                      pip_requirements: list[str], extra_json: dict[str, Any] | None = None,
                      name: str = "model") -> str:
    """Log ``model`` into the existing run ``run_id``; returns ``runs:/<run_id>/<name>``.

    The default pt2 (torch.export) format carries no pickle; an input example with a batch
    of 2 or more makes the batch dimension dynamic.
    """
    import mlflow
    import mlflow.pytorch

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.pytorch.log_model(model, name=name, input_example=input_example,
                                 pip_requirements=pip_requirements)
        for filename, payload in (extra_json or {}).items():
            mlflow.log_dict(payload, f"{name}/{filename}")
    return f"runs:/{run_id}/{name}"


def load_pytorch_model(model_uri: str, tracking_uri: str) -> Any:
    """The model at ``model_uri`` (``runs:/``, ``models:/``), on the CPU, ready for inference."""
    import mlflow
    import mlflow.pytorch

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.pytorch.load_model(model_uri, map_location="cpu")


def register_model(tracking_uri: str, model_uri: str, name: str,
                   tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of ``name`` with ``tags`` (lineage) on it.

    The training run's ``mlpipe.*`` tags are copied onto the version too. Returns the
    version number.
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    version = mlflow.register_model(model_uri, name)
    copied: dict[str, str] = {}
    if model_uri.startswith("runs:/"):
        run_id = model_uri.split("/")[1]
        copied = {k: v for k, v in client.get_run(run_id).data.tags.items()
                  if k.startswith("mlpipe.")}
        copied["mlpipe.training_run_id"] = run_id
    for key, value in {**copied, **tags}.items():
        client.set_model_version_tag(name, version.version, key, value)
    return str(version.version)
