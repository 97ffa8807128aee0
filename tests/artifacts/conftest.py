"""Fixtures for the artifact store suite: a real moto S3 server, a real MLflow store.

``backend`` runs a test over every store (``file``, ``s3``, ``mlflow``), ``writable``
over those that can write. Each test gets a fresh directory URI in its backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from artifact_support import BUCKET, S3_SECRET, Backend, log_run

from mlpipe.artifacts import ArtifactStore, FileArtifactStore, open_store
from mlpipe.artifacts.s3 import S3ArtifactStore


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback, started once for the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    assert server._server is not None
    try:
        yield f"http://127.0.0.1:{server._server.server_port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_options(s3_endpoint: str) -> dict[str, Any]:
    """``S3ArtifactStore`` options for the moto server (any non-empty keys will do)."""
    options = {
        "endpoint_url": s3_endpoint,
        "aws_access_key_id": "moto-key",
        "aws_secret_access_key": S3_SECRET,
        "region_name": "us-east-1",
    }
    return options


@pytest.fixture(scope="session")
def s3_store(s3_options: dict[str, Any]) -> S3ArtifactStore:
    """One S3 store for the session (a boto3 client takes ~0.2 s), and a versioned bucket."""
    store = S3ArtifactStore(**s3_options)
    store.client.create_bucket(Bucket=BUCKET)
    store.client.put_bucket_versioning(Bucket=BUCKET,
                                       VersioningConfiguration={"Status": "Enabled"})
    return store


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real MLflow tracking store (SQLite) with one experiment whose artifacts are files."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow import MlflowClient

        home = tmp_path_factory.mktemp("mlflow")
        uri = f"sqlite:///{home}/mlflow.db"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment_id = client.create_experiment(
            "artifacts", artifact_location=(home / "mlartifacts").as_uri()
        )
        yield {"tracking_uri": uri, "registry_uri": uri, "experiment_id": experiment_id}


def _writable_seed(store: ArtifactStore, root: str) -> Callable[[Mapping[str, bytes]], str]:
    def seed(files: Mapping[str, bytes]) -> str:
        for rel, data in files.items():
            store.write_bytes(f"{root}/{rel}", data)
        return root
    return seed


def _make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "file":
        root = (tmp_path / "store" / "dir").as_uri()
        store: ArtifactStore = FileArtifactStore()
        return Backend(name, store, root, _writable_seed(store, root))
    if name == "s3":
        root = f"s3://{BUCKET}/{uuid.uuid4().hex}/dir"
        store = request.getfixturevalue("s3_store")
        return Backend(name, store, root, _writable_seed(store, root))
    tracking = request.getfixturevalue("mlflow_tracking")
    store = open_store("runs:/x", mlflow_options={"tracking_uri": tracking["tracking_uri"],
                                                   "registry_uri": tracking["registry_uri"]})

    def seed(files: Mapping[str, bytes]) -> str:
        return f"runs:/{log_run(tracking, files, tmp_path)}/data"

    return Backend(name, store, "runs:/not-seeded", seed)


@pytest.fixture(params=["file", "s3", "mlflow"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every artifact store, read side."""
    return _make_backend(request.param, request, tmp_path)


@pytest.fixture(params=["file", "s3"])
def writable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every artifact store that can write."""
    return _make_backend(request.param, request, tmp_path)
