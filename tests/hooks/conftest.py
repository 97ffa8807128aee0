"""A real S3 endpoint on loopback (moto's server) and AWS connections pointing at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"
    server.stop()


@pytest.fixture
def aws_secret() -> str:
    return f"secret-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def aws_conn(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, aws_secret: str) -> str:
    """``MLPIPE_CONN_AWS_TEST`` pointing at the moto server; returns the conn id."""
    monkeypatch.setenv("MLPIPE_CONN_AWS_TEST",
                       f"s3://AKIATESTKEY:{aws_secret}@/?endpoint_url={s3_endpoint}"
                       "&region_name=us-east-1")
    return "aws_test"


@pytest.fixture
def bucket(aws_conn: str) -> str:
    """A new, empty bucket on the moto server."""
    from mlpipe.hooks import S3Hook

    name = f"bucket-{uuid.uuid4().hex[:10]}"
    S3Hook(aws_conn).get_conn().create_bucket(Bucket=name)
    return name
