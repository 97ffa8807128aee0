"""Stores on both backends, and a real S3 endpoint on loopback, for the dataset tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlpipe.store.metadata_store import MetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    new: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return new()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(store_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"
    server.stop()


@pytest.fixture
def aws_conn_uri(s3_endpoint: str) -> str:
    return (f"s3://AKIATESTKEY:secret-{uuid.uuid4().hex[:8]}@/?endpoint_url={s3_endpoint}"
            "&region_name=us-east-1")


@pytest.fixture
def s3_client(s3_endpoint: str) -> object:
    from mlpipe.s3.client import make_client
    from mlpipe.s3.credentials import S3Credentials

    return make_client(S3Credentials(aws_access_key_id="AKIATESTKEY",
                                      aws_secret_access_key="x", region_name="us-east-1",
                                      endpoint_url=s3_endpoint))


@pytest.fixture
def bucket(s3_client: object) -> str:
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name
