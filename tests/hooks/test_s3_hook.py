"""``S3Hook`` against a real S3 endpoint (moto's server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpipe.connections import (
    ConnectionFailedError,
    ConnectionNotFoundError,
    ConnectionsError,
    HookError,
)
from mlpipe.hooks import S3Hook
from mlpipe.hooks.s3 import parse_s3_url


def _put(hook: S3Hook, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        hook.get_conn().put_object(Bucket=bucket, Key=key, Body=body)


def test_the_client_honours_endpoint_url_and_region(aws_conn: str, s3_endpoint: str,
                                                    aws_secret: str) -> None:
    client = S3Hook(aws_conn).get_conn()

    assert client.meta.endpoint_url == s3_endpoint
    assert client.meta.region_name == "us-east-1"
    assert client._request_signer._credentials.secret_key == aws_secret


def test_list_keys_follows_every_page(aws_conn: str, bucket: str) -> None:
    hook = S3Hook(aws_conn)
    _put(hook, bucket, {f"data/{i}.txt": b"x" for i in range(5)} | {"other/x": b"y"})
    calls: list[Any] = []
    hook.get_conn().meta.events.register("after-call.s3.ListObjectsV2",
                                         lambda **kw: calls.append(kw))

    keys = hook.list_keys(bucket, "data/", page_size=2)

    assert keys == [f"data/{i}.txt" for i in range(5)]
    assert len(calls) == 3
    assert [o["Size"] for o in hook.list_objects(bucket, "other/")] == [1]


def test_load_and_download_a_file(aws_conn: str, bucket: str, tmp_path: Path) -> None:
    hook = S3Hook(aws_conn)
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")

    (tmp_path / "d").mkdir()

    hook.load_file(source, "models/model.bin", bucket)
    into_dir = hook.download_file(f"s3://{bucket}/models/model.bin", local_path=tmp_path / "d")
    as_file = hook.download_file("models/model.bin", bucket, local_path=tmp_path / "x/m.bin")

    assert into_dir == tmp_path / "d" / "model.bin" and into_dir.read_bytes() == b"weights"
    assert as_file.read_bytes() == b"weights"
    assert hook.check_for_key("models/model.bin", bucket)
    assert not hook.check_for_key(f"s3://{bucket}/models/absent")


def test_load_file_does_not_replace_unless_asked(aws_conn: str, bucket: str,
                                                 tmp_path: Path) -> None:
    hook = S3Hook(aws_conn)
    source = tmp_path / "a.txt"
    source.write_text("one")
    hook.load_file(source, "a.txt", bucket)
    source.write_text("two")

    with pytest.raises(HookError, match=rf"connection 'aws_test' \(http://127.0.0.1:\d+ "
                                        rf"\(region us-east-1\)\): s3://{bucket}/a.txt exists "
                                        r"already; pass replace=True"):
        hook.load_file(source, "a.txt", bucket)
    hook.load_file(source, "a.txt", bucket, replace=True)
    assert hook.get_conn().get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"two"


def test_upload_and_download_a_prefix_in_parallel(aws_conn: str, bucket: str,
                                                  tmp_path: Path) -> None:
    hook = S3Hook(aws_conn)
    source = tmp_path / "images"
    files = {"cat/1.png": b"c1", "cat/2.png": b"c2", "dog/1.png": b"d1", "README": b"r"}
    for rel, body in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(body)

    keys = hook.upload_prefix(source, bucket, "datasets/pets/", max_workers=4)
    hook.get_conn().put_object(Bucket=bucket, Key="datasets/pets/empty-folder/", Body=b"")
    got = hook.download_prefix(bucket, "datasets/pets/", tmp_path / "copy", max_workers=4)

    assert keys == sorted(f"datasets/pets/{rel}" for rel in files)
    copy = (tmp_path / "copy").resolve()
    assert sorted(p.relative_to(copy).as_posix() for p in got) == sorted(files)
    assert {rel: (copy / rel).read_bytes() for rel in files} == files


def test_download_prefix_refuses_keys_that_escape_the_folder(aws_conn: str, bucket: str,
                                                             tmp_path: Path) -> None:
    hook = S3Hook(aws_conn)
    _put(hook, bucket, {"data/../../evil.txt": b"x"})

    with pytest.raises(HookError, match=r"key 'data/../../evil.txt' would be written outside"):
        hook.download_prefix(bucket, "data/", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_a_missing_bucket_names_the_connection_and_the_error(aws_conn: str) -> None:
    with pytest.raises(HookError, match=r"connection 'aws_test' \(http://127.0.0.1:\d+ .*\): "
                                        r"list s3://no-such-bucket/: NoSuchBucket: ") as info:
        S3Hook(aws_conn).list_keys("no-such-bucket")
    assert not isinstance(info.value, ConnectionFailedError)


def test_an_unreachable_endpoint_is_one_line_with_the_secret_masked(
        monkeypatch: pytest.MonkeyPatch, aws_secret: str) -> None:
    monkeypatch.setenv("MLPIPE_CONN_AWS_DOWN",
                       f"s3://AKIA:{aws_secret}@/?endpoint_url=http://127.0.0.1:9&max_attempts=1")

    with pytest.raises(ConnectionFailedError,
                       match=r"^connection 'aws_down' \(http://127.0.0.1:9\): list buckets: "
                             r"Could not connect to the endpoint URL") as info:
        S3Hook("aws_down").test_connection()
    assert aws_secret not in str(info.value) and "\n" not in str(info.value)


@pytest.fixture
def moto_checks_credentials(s3_endpoint: str) -> Iterator[None]:
    """Make the moto server verify access keys (off again afterwards)."""
    import urllib.request

    def set_count(value: str) -> None:
        request = urllib.request.Request(f"{s3_endpoint}/moto-api/reset-auth",
                                         data=value.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).close()

    set_count("0")
    yield
    set_count("inf")


def test_wrong_credentials_are_a_connection_failure(aws_conn: str, aws_secret: str,
                                                    moto_checks_credentials: None) -> None:
    with pytest.raises(ConnectionFailedError,
                       match=r"connection 'aws_test' \(http://127.0.0.1:\d+ \(region "
                             r"us-east-1\)\): list buckets: InvalidAccessKeyId: ") as info:
        S3Hook(aws_conn).test_connection()
    assert aws_secret not in str(info.value)


def test_test_connection_lists_the_bucket_extra_or_all_buckets(
        monkeypatch: pytest.MonkeyPatch, aws_conn: str, bucket: str, s3_endpoint: str) -> None:
    assert "bucket(s) visible" in S3Hook(aws_conn).test_connection()
    monkeypatch.setenv("MLPIPE_CONN_AWS_B", f"s3://k:s3cret@/?endpoint_url={s3_endpoint}"
                                            f"&bucket={bucket}")
    assert S3Hook("aws_b").test_connection() == f"listed bucket {bucket!r}"
    monkeypatch.setenv("MLPIPE_CONN_AWS_B", f"s3://k:s3cret@/nope-bucket?endpoint_url="
                                            f"{s3_endpoint}")
    with pytest.raises(HookError, match=r"list bucket 'nope-bucket': NoSuchBucket"):
        S3Hook("aws_b").test_connection()


def test_without_a_connection_boto3_defaults_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    hook = S3Hook(None, region_name="eu-west-1")

    client = hook.get_conn()

    assert hook.endpoint() == "AWS S3 (region eu-west-1)"
    assert client.meta.region_name == "eu-west-1"
    assert client._request_signer._credentials.access_key == "AKIAFROMENV"


def test_a_hook_without_any_connection_id_says_so() -> None:
    from mlpipe.hooks import BaseHook

    with pytest.raises(ConnectionsError, match=r"BaseHook was given no connection id; pass one"):
        _ = BaseHook(None).connection


def test_an_unknown_connection_fails_on_first_use_not_construction() -> None:
    hook = S3Hook("aws_nowhere")

    with pytest.raises(ConnectionNotFoundError, match=r"connection 'aws_nowhere' not found"):
        hook.get_conn()


@pytest.mark.parametrize(("url", "match"), [
    ("http://x/y", r"not an s3:// URL"),
    ("s3:///key", r"'s3:///key' names no bucket; write s3://BUCKET/KEY"),
])
def test_bad_s3_urls(url: str, match: str) -> None:
    with pytest.raises(HookError, match=match):
        parse_s3_url(url)
    assert parse_s3_url("s3://b/k/e/y") == ("b", "k/e/y")
