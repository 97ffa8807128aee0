"""The one S3 stack (``mlpipe.s3``): URL parsing, the credentials mapping the hook and the
artifact store share, and error lines that never carry a secret (real moto server)."""

from __future__ import annotations

import socket

import moto.settings
import pytest
from botocore.exceptions import ClientError

from mlpipe.artifacts import ArtifactError, open_store
from mlpipe.artifacts.s3 import S3ArtifactStore
from mlpipe.connections import Connection
from mlpipe.connections.errors import ConnectionFailedError
from mlpipe.errors import MlpipeError
from mlpipe.hooks import S3Hook
from mlpipe.operators.s3 import store_options
from mlpipe.s3 import InvalidS3UrlError, S3ClientSettings, describe_failure, parse_s3_url


@pytest.mark.parametrize(("url", "what", "match"), [
    ("http://x/y", "URL", r"^URL 'http://x/y' is not an s3:// URL; write s3://BUCKET/KEY$"),
    ("s3:///key", "source", r"^source 's3:///key' names no bucket; write s3://BUCKET/KEY$"),
    ("", "dest", r"^dest '' is not an s3:// URL"),
    (None, "dest", r"^dest None is not an s3:// URL"),
    ("S3://b/k", "URL", r"^URL 'S3://b/k' is not an s3:// URL"),
])
def test_a_bad_s3_url_is_one_line_naming_the_value(url: str, what: str, match: str) -> None:
    with pytest.raises(InvalidS3UrlError, match=match) as caught:
        parse_s3_url(url, what=what)
    assert isinstance(caught.value, MlpipeError)
    assert caught.value.url == url


def test_s3_urls_split_into_bucket_and_key() -> None:
    assert parse_s3_url("s3://b/k/e/y") == ("b", "k/e/y")
    assert parse_s3_url("s3://b/dir/") == ("b", "dir/")
    assert parse_s3_url("s3://b") == ("b", "")


def test_a_connection_maps_to_every_client_setting() -> None:
    conn = Connection.from_uri(
        "aws_x", "aws://AKIAKEY:sec%2Fret@/?endpoint_url=http%3A%2F%2F127.0.0.1%3A9&"
                 "region_name=eu-west-1&aws_session_token=tok&verify=false&max_attempts=5&"
                 "connect_timeout=2&read_timeout=7&addressing_style=path")

    settings = S3ClientSettings.from_connection(conn)

    assert settings == S3ClientSettings(
        aws_access_key_id="AKIAKEY", aws_secret_access_key="sec/ret", aws_session_token="tok",
        region_name="eu-west-1", endpoint_url="http://127.0.0.1:9", verify=False,
        max_attempts=5, connect_timeout=2.0, read_timeout=7.0, addressing_style="path")
    assert "sec/ret" not in repr(settings) and "tok" not in repr(settings)
    assert settings.secrets() == ["sec/ret", "tok"]


def test_keys_in_the_extras_and_a_region_override_are_honoured() -> None:
    conn = Connection("aws_y", "aws", extra={"aws_access_key_id": "AKIAEXTRA",
                                             "aws_secret_access_key": "extra-secret",
                                             "region_name": "us-west-2"})

    settings = S3ClientSettings.from_connection(conn, region_name="ap-south-1")

    assert (settings.aws_access_key_id, settings.aws_secret_access_key,
            settings.region_name) == ("AKIAEXTRA", "extra-secret", "ap-south-1")
    assert S3ClientSettings.from_connection(None, region_name="eu-north-1") == \
        S3ClientSettings(region_name="eu-north-1")


def test_hook_and_store_build_the_same_client_from_one_connection(
        aws_conn: str, bucket: str, aws_secret: str) -> None:
    hook = S3Hook(aws_conn)
    store = open_store("s3://any", s3_options=store_options(aws_conn, max_workers=7))
    assert isinstance(store, S3ArtifactStore)

    assert store.settings == hook.settings
    assert hook.settings.aws_secret_access_key == aws_secret
    for client in (hook.get_conn(), store.client):
        credentials = client._request_signer._credentials
        assert (client.meta.endpoint_url, client.meta.region_name, credentials.access_key,
                credentials.secret_key) == (hook.settings.endpoint_url, "us-east-1",
                                            "AKIATESTKEY", aws_secret)
    assert store.client.meta.config.max_pool_connections == 7
    store.write_bytes(f"s3://{bucket}/from-store.txt", b"x")
    assert hook.list_keys(bucket) == ["from-store.txt"]


def test_refused_credentials_never_show_the_secret(
        aws_conn: str, bucket: str, aws_secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys
    store = open_store("s3://any", s3_options=store_options(aws_conn))

    with pytest.raises(ConnectionFailedError, match="InvalidAccessKeyId") as from_hook:
        S3Hook(aws_conn).list_keys(bucket)
    with pytest.raises(ArtifactError,
                       match=r"at endpoint .*: access denied \(403\)") as from_store:
        store.exists(f"s3://{bucket}/k")

    for error in (from_hook.value, from_store.value):
        assert aws_secret not in str(error) and "\n" not in str(error)


def test_a_secret_echoed_by_the_server_is_masked() -> None:
    echoed = ClientError({"Error": {"Code": "AccessDenied",
                                    "Message": "key s3cr3t-x was\n refused"}}, "GetObject")

    failure = describe_failure(echoed, ["s3cr3t-x"])

    assert (failure.kind, failure.code, failure.detail) == (
        "denied", "AccessDenied", "AccessDenied: key *** was refused")


def test_an_unreachable_endpoint_is_one_line_for_hook_and_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLPIPE_CONN_AWS_DOWN", f"aws://k:down-secret@/?endpoint_url=http%3A%2F"
                                               f"%2F127.0.0.1%3A{port}&max_attempts=1")
    store = open_store("s3://b", s3_options=store_options("aws_down"))

    with pytest.raises(ConnectionFailedError, match=r"list s3://b/: Could not connect"):
        S3Hook("aws_down").list_keys("b")
    with pytest.raises(ArtifactError, match=r"cannot connect to the endpoint") as caught:
        store.exists("s3://b/k")
    assert "down-secret" not in str(caught.value)

