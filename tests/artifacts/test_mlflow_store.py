"""The MLflow store reads registered models (by version and alias) and refuses writes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from artifact_support import log_run, write_tree

from mlpipe.artifacts import ArtifactError, ArtifactNotFoundError, open_store
from mlpipe.artifacts.localfs import tree_entries, tree_stat
from mlpipe.artifacts.mlflow_store import MlflowArtifactStore

MODEL_FILES = {
    "MLmodel": b"flavors: {}\n",
    "weights.bin": bytes(range(200)),
    "extra/classes.json": b'["cat", "dog"]',
}


@pytest.fixture(scope="module")
def registered_model(mlflow_tracking: dict[str, str],
                     tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Model 'classifier' version 1, alias 'production', holding MODEL_FILES."""
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("model")
    run_id = log_run(mlflow_tracking, MODEL_FILES, tmp, artifact_path="model")
    client = MlflowClient(mlflow_tracking["tracking_uri"], mlflow_tracking["registry_uri"])
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    client.create_registered_model("classifier")
    version = client.create_model_version("classifier", source, run_id=run_id).version
    client.set_registered_model_alias("classifier", "production", version)
    expected = tree_stat(tree_entries(write_tree(tmp / "expected", MODEL_FILES)))
    return {"run_id": run_id, "version": version, "stat": expected}


@pytest.fixture
def store(mlflow_tracking: dict[str, str]) -> MlflowArtifactStore:
    opened = open_store("models:/x/1", mlflow_options={
        "tracking_uri": mlflow_tracking["tracking_uri"],
        "registry_uri": mlflow_tracking["registry_uri"],
    })
    assert isinstance(opened, MlflowArtifactStore)
    return opened


@pytest.mark.parametrize("uri", ["models:/classifier/1", "models:/classifier@production"])
def test_read_a_registered_model(store: MlflowArtifactStore, registered_model: dict[str, Any],
                                 uri: str, tmp_path: Path) -> None:
    assert store.exists(uri)
    assert store.list(uri) == [f"{uri}/MLmodel", f"{uri}/extra/", f"{uri}/weights.bin"]
    assert store.read_bytes(f"{uri}/weights.bin") == bytes(range(200))
    assert store.exists(f"{uri}/extra/classes.json")
    assert store.stat(uri) == registered_model["stat"]
    local = store.get_dir(uri, tmp_path / "model")
    assert tree_stat(tree_entries(local)) == registered_model["stat"]


@pytest.mark.usefixtures("registered_model")
@pytest.mark.parametrize("uri", ["models:/classifier/9", "models:/classifier@staging",
                                 "models:/unknown/1", "models:/classifier/1/nope.bin"])
def test_missing_model_or_file(store: MlflowArtifactStore, uri: str) -> None:
    assert not store.exists(uri)
    with pytest.raises(ArtifactNotFoundError, match=re.escape(uri)):
        store.stat(uri)


def test_missing_run(store: MlflowArtifactStore) -> None:
    uri = "runs:/0123456789abcdef0123456789abcdef/model.pkl"
    assert not store.exists(uri)
    assert store.list("runs:/0123456789abcdef0123456789abcdef/") == []
    with pytest.raises(ArtifactNotFoundError, match=re.escape(uri)):
        store.read_bytes(uri)


def test_run_root_lists_its_artifact_paths(store: MlflowArtifactStore,
                                           registered_model: dict[str, Any]) -> None:
    root = f"runs:/{registered_model['run_id']}"
    assert store.exists(root)
    assert store.list(root) == [f"{root}/model/"]


def test_writes_are_refused(store: MlflowArtifactStore, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"f.txt": b"x"})
    with pytest.raises(ArtifactError, match=r"'runs:/r/f\.txt'.*read-only"):
        store.write_bytes("runs:/r/f.txt", b"x")
    with pytest.raises(ArtifactError, match="read-only"):
        store.put_file(source / "f.txt", "runs:/r/f.txt")
    with pytest.raises(ArtifactError, match="read-only"):
        store.put_dir(source, "models:/classifier/1")
