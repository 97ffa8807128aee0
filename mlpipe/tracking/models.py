"""PyTorch models in MLflow: logging, loading and the Model Registry (the only mlflow imports
for models). Aliases, never stages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mlpipe.errors import ModelRegistryError

#: key of the logged model's metadata that holds mlpipe's serving spec (classes, preprocessing)
SPEC_KEY = "mlpipe_spec"


@dataclass(frozen=True)
class LoggedModel:
    """A model logged by a training run: its ``models:/m-...`` URI and the run."""

    model_uri: str
    run_id: str


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference with the metadata it was logged with.

    ``version`` is the registry version when loaded by name/version or alias, else None.
    """

    model: Any
    metadata: dict[str, Any]
    version: str | None


def log_pytorch_model(tracking_uri: str, run_id: str, model: Any, *, input_example: Any,
                      pip_requirements: list[str], metadata: dict[str, Any] | None = None,
                      name: str = "model") -> LoggedModel:
    """Log ``model`` into the existing run ``run_id`` with ``metadata`` in its MLmodel file.

    The default pt2 (torch.export) format carries no pickle; an input example with a batch
    of 2 or more makes the batch dimension dynamic.
    """
    import mlflow
    import mlflow.pytorch

    with tracking_uri_scope(tracking_uri), mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(model, name=name, input_example=input_example,
                                        pip_requirements=pip_requirements,
                                        metadata=metadata)
    return LoggedModel(model_uri=info.model_uri, run_id=run_id)


def load_pytorch_model(model_uri: str, tracking_uri: str) -> Any:
    """The model at ``model_uri`` (``runs:/``, ``models:/``), on the CPU, ready for inference."""
    return load_model(model_uri, tracking_uri).model


def load_model(model_uri: str, tracking_uri: str) -> LoadedModel:
    """The model at ``model_uri`` with its metadata and registry version.

    An alias (``models:/name@alias``) is resolved once, here, so model and version match.
    """
    import mlflow
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    uri, version = model_uri, None
    registered = parse_registered_uri(model_uri)
    if registered is not None:
        name, version, alias = registered
        if alias is not None:
            version = alias_version(tracking_uri, name, alias)
            if version is None:
                raise ModelRegistryError(f"model {name!r} has no alias {alias!r}; deploy a "
                                         "version first (DeployModelOperator)")
        uri = f"models:/{name}/{version}"
    try:
        with tracking_uri_scope(tracking_uri):
            info = mlflow.models.get_model_info(uri)
            model = mlflow.pytorch.load_model(uri, map_location="cpu")
    except MlflowException as exc:
        raise ModelRegistryError(f"cannot load {model_uri!r}: {exc.message}") from None
    return LoadedModel(model=model, metadata=dict(info.metadata or {}), version=version)


def parse_registered_uri(uri: str) -> tuple[str, str | None, str | None] | None:
    """``models:/name/version`` -> (name, version, None); ``models:/name@alias`` ->
    (name, None, alias); other URIs (``runs:/``, ``models:/m-...``) -> None."""
    if not uri.startswith("models:/"):
        return None
    spec = uri[len("models:/"):].strip("/")
    if "@" in spec:
        name, _, alias = spec.partition("@")
        return name, None, alias
    name, _, version = spec.partition("/")
    if not version:
        return None  # a logged model id
    return name, version, None


@contextmanager
def tracking_uri_scope(tracking_uri: str) -> Iterator[None]:
    """MLflow's fluent API (``start_run``, ``register_model``, ``models:/`` loads) pointed at
    ``tracking_uri`` inside the block only: the process's own tracking URI (a notebook's, the
    user's ``MLFLOW_TRACKING_URI``) is back in place afterwards."""
    import os

    from mlflow.tracking._tracking_service import utils

    # set_tracking_uri also writes (or, given None, deletes) MLFLOW_TRACKING_URI in os.environ:
    # both the module's URI and the variable are put back as they were.
    old_uri, old_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    utils.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        utils.set_tracking_uri(old_uri)
        if old_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def source_run_id(tracking_uri: str, model_uri: str) -> str | None:
    """The run that logged ``model_uri`` (``runs:/<id>/...`` or ``models:/m-...``)."""
    if model_uri.startswith("runs:/"):
        return model_uri.split("/")[1]
    if model_uri.startswith("models:/m-"):
        model_id = model_uri[len("models:/"):].strip("/")
        run_id: str | None = _client(tracking_uri).get_logged_model(model_id).source_run_id
        return run_id
    return None


def register_model(tracking_uri: str, model_uri: str, name: str,
                   tags: dict[str, str]) -> str:
    """A registry version of ``name`` for ``model_uri`` with ``tags`` (lineage) on it.

    Idempotent: if a version of ``name`` was already registered from ``model_uri`` (tag
    ``mlpipe.model_uri``), that version is returned. The training run's ``mlpipe.*`` tags are
    copied onto a new version. Returns the version number.
    """
    import mlflow

    client = _client(tracking_uri)
    existing = client.search_model_versions(
        f"name = '{name}' and tags.`mlpipe.model_uri` = '{model_uri}'")
    if existing:
        return str(min(int(v.version) for v in existing))
    with tracking_uri_scope(tracking_uri):
        version = mlflow.register_model(model_uri, name)
    copied: dict[str, str] = {"mlpipe.model_uri": model_uri}
    run_id = source_run_id(tracking_uri, model_uri)
    if run_id is not None:
        copied.update({k: v for k, v in client.get_run(run_id).data.tags.items()
                       if k.startswith("mlpipe.")})
        copied["mlpipe.training_run_id"] = run_id
    for key, value in {**copied, **tags}.items():
        client.set_model_version_tag(name, version.version, key, value)
    return str(version.version)


def alias_version(tracking_uri: str, name: str, alias: str) -> str | None:
    """The version of ``name`` that holds ``alias``, or None (no alias, or no such model)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(tracking_uri: str, name: str, alias: str, version: str | None) -> None:
    """Point ``alias`` at ``version``; None removes the alias."""
    client = _client(tracking_uri)
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, str(version))


def version_tags(tracking_uri: str, name: str, version: str) -> dict[str, str]:
    """The tags of one model version.

    Raises:
        ModelRegistryError: no such model or version.
    """
    from mlflow.exceptions import MlflowException

    try:
        tags: dict[str, str] = dict(_client(tracking_uri).get_model_version(name, version).tags)
    except MlflowException as exc:
        raise ModelRegistryError(f"model {name!r} version {version!r}: {exc.message}"
                                 ) from None
    return tags


def tag_version(tracking_uri: str, name: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on one model version."""
    client = _client(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
