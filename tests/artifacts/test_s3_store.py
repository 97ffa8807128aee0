"""What only the S3 store does: ETags and versions, client config, errors, incomplete dirs."""

from __future__ import annotations

import hashlib
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from artifact_support import BUCKET, S3_SECRET, write_tree

from mlpipe.artifacts import ArtifactError, ArtifactNotFoundError, open_store
from mlpipe.artifacts.s3 import S3ArtifactStore
from mlpipe.artifacts.s3_tree import INCOMPLETE_MARKER

MIB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    """A fresh directory URI in the session bucket."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture
def iam_enforced(s3_endpoint: str) -> Iterator[None]:
    """Make moto check credentials (it accepts any by default) for one test."""

    def reset_auth(count: str) -> None:
        request = urllib.request.Request(
            f"{s3_endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 200

    reset_auth("0")
    try:
        yield
    finally:
        reset_auth("inf")


def test_stat_exposes_etag_and_version_id(s3_store: S3ArtifactStore, prefix: str) -> None:
    uri = f"{prefix}/metrics.json"
    first = s3_store.write_bytes(uri, b"{}")
    assert first.etag == hashlib.md5(b"{}").hexdigest()
    assert first.version_id
    second = s3_store.write_bytes(uri, b"[]")
    assert s3_store.stat(uri) == second
    assert second.version_id != first.version_id
    extra = s3_store.describe(uri, "metrics").extra
    assert extra == {"etag": second.etag, "version_id": second.version_id}


def test_multipart_upload_keeps_the_sha256(s3_options: dict[str, Any], s3_store: S3ArtifactStore,
                                           prefix: str, tmp_path: Path) -> None:
    store = S3ArtifactStore(**s3_options, multipart_threshold=5 * MIB,
                            multipart_chunksize=5 * MIB)
    data = bytes(range(256)) * (11 * MIB // 256)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    info = store.put_file(source, f"{prefix}/big.bin")
    assert info.etag is not None and info.etag.endswith("-3")  # three parts
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_object_written_by_another_tool_is_hashed_on_stat(s3_store: S3ArtifactStore,
                                                          prefix: str) -> None:
    key = prefix.removeprefix(f"s3://{BUCKET}/") + "/foreign.csv"
    s3_store.client.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n1,2\n")
    assert s3_store.stat(f"{prefix}/foreign.csv").sha256 == hashlib.sha256(
        b"a,b\n1,2\n").hexdigest()


def test_client_pool_matches_max_workers(s3_options: dict[str, Any]) -> None:
    store = open_store("s3://any", s3_options={**s3_options, "max_workers": 7})
    assert isinstance(store, S3ArtifactStore)
    assert store.client.meta.config.max_pool_connections == 7
    assert store.transfer_config.max_request_concurrency == 7
    assert store.client.meta.endpoint_url == s3_options["endpoint_url"]


def test_missing_key_names_uri_and_endpoint(s3_store: S3ArtifactStore, prefix: str,
                                            s3_endpoint: str) -> None:
    uri = f"{prefix}/nope.bin"
    with pytest.raises(ArtifactNotFoundError,
                       match=re.escape(uri) + ".*" + re.escape(s3_endpoint)):
        s3_store.read_bytes(uri)


def test_missing_bucket_names_bucket_and_endpoint(s3_store: S3ArtifactStore,
                                                  s3_endpoint: str) -> None:
    expected = re.escape(f"at endpoint {s3_endpoint}: bucket 'no-such-bucket' does not exist")
    with pytest.raises(ArtifactError, match=expected):
        s3_store.exists("s3://no-such-bucket/k")
    with pytest.raises(ArtifactError, match=expected):
        s3_store.write_bytes("s3://no-such-bucket/k", b"x")


@pytest.mark.usefixtures("iam_enforced")
def test_bad_credentials_fail_in_one_line_without_the_secret(
    s3_store: S3ArtifactStore, prefix: str, s3_endpoint: str
) -> None:
    uri = f"{prefix}/x.bin"
    for attempt in (lambda: s3_store.write_bytes(uri, b"x"), lambda: s3_store.exists(uri),
                    lambda: s3_store.list(prefix)):
        with pytest.raises(ArtifactError, match="access denied") as caught:
            attempt()
        message = str(caught.value)
        assert BUCKET in message and s3_endpoint in message
        assert S3_SECRET not in message and "\n" not in message


def test_interrupted_put_dir_counts_as_absent(s3_store: S3ArtifactStore, prefix: str,
                                              tmp_path: Path) -> None:
    bucket_key = prefix.removeprefix(f"s3://{BUCKET}/")
    for key in ("ds/a.bin", f"ds/{INCOMPLETE_MARKER}", "done.txt"):
        s3_store.client.put_object(Bucket=BUCKET, Key=f"{bucket_key}/{key}", Body=b"x")
    dataset = f"{prefix}/ds"
    assert not s3_store.exists(dataset)
    with pytest.raises(ArtifactNotFoundError, match=re.escape(dataset) + ".*incomplete"):
        s3_store.stat(dataset)
    with pytest.raises(ArtifactNotFoundError, match="incomplete"):
        s3_store.get_dir(dataset, tmp_path / "ds")
    assert s3_store.list(dataset) == []
    assert s3_store.list(prefix) == [f"{prefix}/done.txt"]
    assert s3_store.list(prefix, recursive=True) == [f"{prefix}/done.txt"]

    s3_store.put_dir(write_tree(tmp_path / "src", {"b.bin": b"y"}), dataset)
    assert s3_store.exists(dataset)
    assert s3_store.list(prefix, recursive=True) == [f"{prefix}/done.txt", f"{dataset}/b.bin"]


def test_put_dir_over_a_file_of_the_same_name(s3_store: S3ArtifactStore, prefix: str,
                                              tmp_path: Path) -> None:
    uri = f"{prefix}/model"
    s3_store.write_bytes(uri, b"a file")
    info = s3_store.put_dir(write_tree(tmp_path / "m", {"w.bin": b"w"}), uri)
    assert s3_store.stat(uri) == info
    assert s3_store.list(prefix) == [f"{uri}/"]


@pytest.mark.parametrize(("uri", "message"), [
    (f"s3://{BUCKET}/dir/", "names a directory"),
    (f"s3://{BUCKET}", "names a directory"),
    ("s3:///key", "names no bucket"),
])
def test_file_writes_need_a_bucket_and_key(s3_store: S3ArtifactStore, uri: str,
                                           message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        s3_store.write_bytes(uri, b"x")
