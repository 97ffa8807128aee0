"""``mlpipe.s3``: the one URL parser, credentials mapping, client and error description that
the hook, the artifact store and the S3 operators share."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.artifacts import open_store
from mlpipe.errors import ArtifactError
from mlpipe.hooks.s3 import S3Hook, credentials_for
from mlpipe.operators.s3 import S3OperatorError, split_s3, store_options
from mlpipe.s3 import S3Credentials, S3UriError, split_s3_uri
from mlpipe.s3.errors import FailureKind, describe


@pytest.mark.parametrize(("value", "message"), [
    ("http://bucket/key", "source 'http://bucket/key' is not an s3:// URL; write s3://BUCKET/KEY"),
    ("s3:///key", "source 's3:///key' names no bucket; write s3://BUCKET/KEY"),
    (42, "source 42 is not an s3:// URL; write s3://BUCKET/KEY"),
])
def test_a_bad_url_names_the_value_and_the_form(value: object, message: str) -> None:
    with pytest.raises(S3UriError) as info:
        split_s3_uri(value, what="source")
    assert str(info.value) == message
    assert split_s3_uri("s3://b/k/e/y") == ("b", "k/e/y")
    assert split_s3_uri("s3://b") == ("b", "")


def test_every_layer_reports_the_same_parse_error_in_its_own_type() -> None:
    with pytest.raises(S3OperatorError, match=r"^dest 's3:///x' names no bucket"):
        split_s3("s3:///x", what="dest")
    with pytest.raises(ArtifactError, match=r"^'s3:///x' names no bucket"):
        open_store("s3://b/x").stat("s3:///x")


def test_hook_store_and_operator_map_a_connection_to_the_same_credentials(
        monkeypatch: pytest.MonkeyPatch, aws_secret: str) -> None:
    monkeypatch.setenv("MLPIPE_CONN_AWS_MAP",
                       f"s3://AKIAMAP:{aws_secret}@/?endpoint_url=http://127.0.0.1:9"
                       "&region_name=eu-west-2&aws_session_token=tok&max_attempts=1"
                       "&verify=false")
    expected = S3Credentials(aws_access_key_id="AKIAMAP", aws_secret_access_key=aws_secret,
                             aws_session_token="tok", region_name="eu-west-2",
                             endpoint_url="http://127.0.0.1:9", verify=False, max_attempts=1)

    assert credentials_for("aws_map") == expected
    assert S3Hook("aws_map").credentials() == expected
    assert store_options("aws_map", max_workers=4)["credentials"] == expected
    store = open_store("s3://b/k", s3_options=store_options("aws_map"))
    assert store.credentials == expected  # type: ignore[attr-defined]
    assert S3Hook("aws_map", region_name="us-east-1").credentials().region_name == "us-east-1"


def test_credentials_never_show_the_secret(aws_secret: str) -> None:
    creds = S3Credentials(aws_access_key_id="AKIA", aws_secret_access_key=aws_secret,
                          aws_session_token="session-token-value")
    assert aws_secret not in repr(creds)
    assert "session-token-value" not in repr(creds)


def test_a_server_error_that_echoes_the_secret_is_masked(aws_secret: str) -> None:
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "SignatureDoesNotMatch",
                                 "Message": f"the key {aws_secret} did not sign"}}, "ListObjects")
    failure = describe(exc, secret=aws_secret)
    assert failure.kind is FailureKind.DENIED
    assert failure.reason == "SignatureDoesNotMatch: the key *** did not sign"


def test_hook_and_store_from_one_connection_see_the_same_bucket(
        aws_conn: str, bucket: str, tmp_path: Path) -> None:
    hook = S3Hook(aws_conn)
    (tmp_path / "a.txt").write_text("a")
    hook.load_file(tmp_path / "a.txt", f"s3://{bucket}/data/a.txt")
    store = open_store(f"s3://{bucket}/data/", s3_options=store_options(aws_conn))

    assert store.list(f"s3://{bucket}/data/") == [f"s3://{bucket}/data/a.txt"]
    assert hook.list_keys(bucket, "data/") == ["data/a.txt"]
    with pytest.raises(ArtifactError, match=r"bucket 'no-such-bucket' does not exist"):
        store.stat("s3://no-such-bucket/k")


def test_the_shared_transfer_helpers_move_list_and_delete_a_tree(
        aws_conn: str, bucket: str, tmp_path: Path) -> None:
    from mlpipe.s3 import transfer

    client = S3Hook(aws_conn).get_conn()
    files = {"a.txt": b"a", "sub/b.txt": b"bb", "sub/deep/c.txt": b"ccc"}
    for rel, data in files.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_bytes(data)
    config = transfer.transfer_config(4)

    transfer.upload_files(client, config, [(str(tmp_path / "src" / rel), bucket, f"t/{rel}",
                                            {"Metadata": {"n": str(len(data))}})
                                           for rel, data in files.items()])

    listed = transfer.list_objects(client, bucket, "t/", page_size=1)  # one key per page
    assert sorted((o["Key"], o["Size"]) for o in listed) == [
        ("t/a.txt", 1), ("t/sub/b.txt", 2), ("t/sub/deep/c.txt", 3)]
    assert transfer.list_level(client, bucket, "t/") == ({"t/a.txt"}, {"t/sub/"})
    assert client.head_object(Bucket=bucket, Key="t/sub/b.txt")["Metadata"] == {"n": "2"}
    (tmp_path / "dst" / "sub").mkdir(parents=True)
    transfer.download_files(client, config, [(bucket, "t/sub/b.txt",
                                              str(tmp_path / "dst" / "sub" / "b.txt"))])
    assert (tmp_path / "dst" / "sub" / "b.txt").read_bytes() == b"bb"
    assert transfer.delete_keys(client, bucket, [o["Key"] for o in listed]) == []
    assert transfer.list_objects(client, bucket, "t/") == []



def test_a_failed_parallel_upload_is_described_like_any_call(aws_conn: str,
                                                              tmp_path: Path) -> None:
    from mlpipe.s3 import transfer
    from mlpipe.s3.errors import is_boto_error

    (tmp_path / "f").write_bytes(b"x")
    client = S3Hook(aws_conn).get_conn()
    with pytest.raises(Exception) as info:  # whatever the transfer manager raises
        transfer.upload_files(client, transfer.transfer_config(1),
                              [(str(tmp_path / "f"), "no-such-bucket-z", "k", None)])
    assert is_boto_error(info.value)
    assert describe(info.value).kind is FailureKind.NO_BUCKET


@pytest.mark.parametrize("value", ["2026-12-05T19:30:00.000Z", "2026-12-05T19:30:00Z",
                                   "2026-12-05T19:30:00.123456+02:00",
                                   "Sat, 05 Dec 2026 19:30:00 GMT", "1700000000", 1700000000])
def test_the_fast_timestamp_parser_agrees_with_botocores(value: object) -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    from mlpipe.s3.client import parse_timestamp

    parsed = parse_timestamp(value)
    assert parsed == botocore_parse(value)
    assert parsed.tzinfo is not None and parsed.utcoffset() == botocore_parse(value).utcoffset()
