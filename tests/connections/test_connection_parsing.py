"""``Connection`` from URIs and JSON, back to URIs, and what it never shows."""

from __future__ import annotations

import json

import pytest

from mlpipe.connections import Connection, InvalidConnectionError
from mlpipe.errors import MlpipeError


def test_a_postgres_uri_is_split_into_fields_and_url_decoded() -> None:
    conn = Connection.from_uri("db", "postgresql://us%40er:p%2Fw%3Ad%2B@db.local:5433/my%20db"
                                     "?sslmode=require")

    assert (conn.conn_type, conn.host, conn.port, conn.schema) == (
        "postgresql", "db.local", 5433, "my db")
    assert (conn.login, conn.password) == ("us@er", "p/w:d+")
    assert conn.extra == {"sslmode": "require"}
    assert not conn.is_aws


def test_an_s3_uri_carries_the_aws_keys_and_its_query_becomes_extras() -> None:
    conn = Connection.from_uri(
        "aws_default", "s3://AKIAEXAMPLE:wJalr%2FXUtnFEMI@/?endpoint_url=http%3A%2F%2F"
                       "127.0.0.1%3A9000&region_name=eu-west-1")

    assert conn.is_aws
    assert conn.host is None
    assert (conn.login, conn.password) == ("AKIAEXAMPLE", "wJalr/XUtnFEMI")
    assert conn.extra_dejson == {"endpoint_url": "http://127.0.0.1:9000",
                                 "region_name": "eu-west-1"}


def test_query_values_may_stay_unencoded() -> None:
    conn = Connection.from_uri("aws", "s3://k:s@/?endpoint_url=http://127.0.0.1:9000")

    assert conn.extra == {"endpoint_url": "http://127.0.0.1:9000"}


def test_json_form() -> None:
    conn = Connection.from_string("aws", json.dumps({
        "conn_type": "aws", "login": "AKIA", "password": "sec",
        "extra": {"endpoint_url": "http://localhost:9000", "verify": False}}))

    assert (conn.conn_type, conn.login, conn.password) == ("aws", "AKIA", "sec")
    assert conn.extra == {"endpoint_url": "http://localhost:9000", "verify": False}


@pytest.mark.parametrize(("uri", "host"), [
    ("sqlite:///relative/app.db", "relative/app.db"),
    ("sqlite:////abs/app.db", "/abs/app.db"),
    ("sqlite://", None),
])
def test_sqlite_keeps_the_database_path_in_host(uri: str, host: str | None) -> None:
    assert Connection.from_uri("lite", uri).host == host


@pytest.mark.parametrize("uri", [
    "postgresql://user:p%40ss@db.local:5432/analytics?sslmode=require",
    "s3://AKIA:wJalr%2FX%2BY@/?endpoint_url=http%3A%2F%2F127.0.0.1%3A9000&region_name=us-east-1",
    "sqlite:////tmp/x.db",
    "mysql+pymysql://root@[::1]:3306/shop",
    "aws://?__extra__=%7B%22retries%22%3A+3%7D",
    "http://h/?tag=a&tag=b",
])
def test_get_uri_reads_back_to_the_same_connection(uri: str) -> None:
    conn = Connection.from_uri("c", uri)

    again = Connection.from_uri("c", conn.get_uri())

    assert again == conn


def test_a_repeated_query_parameter_is_a_list() -> None:
    assert Connection.from_uri("c", "http://h/?tag=a&tag=b").extra == {"tag": ["a", "b"]}


def test_masked_views_never_show_secrets() -> None:
    conn = Connection("db", "postgresql", host="h", port=5432, login="u",
                      password="hunter2-long", schema="d",
                      extra={"api_token": "tok-123456", "sslmode": "require"})

    for text in (conn.get_uri(masked=True), conn.endpoint(), repr(conn),
                 json.dumps(conn.to_dict(masked=True))):
        assert "hunter2-long" not in text
        assert "tok-123456" not in text
    assert conn.get_uri(masked=True) == (
        "postgresql://u:***@h:5432/d?api_token=%2A%2A%2A&sslmode=require")
    assert conn.secrets() == ["hunter2-long", "tok-123456"]


def test_the_endpoint_of_an_aws_connection_is_its_endpoint_url() -> None:
    conn = Connection.from_uri("s3", "s3://k:secret-key@/?endpoint_url=http://minio:9000"
                                     "&region_name=eu-west-1")

    assert conn.endpoint() == "http://minio:9000 (region eu-west-1)"
    assert Connection("s3", "aws").endpoint() == "AWS S3"


def test_extra_dejson_is_a_copy() -> None:
    conn = Connection("c", "http", extra={"nested": {"a": 1}})

    conn.extra_dejson["nested"]["a"] = 2

    assert conn.extra == {"nested": {"a": 1}}


def test_an_extra_given_as_json_text_is_parsed() -> None:
    assert Connection("c", "http", extra='{"a": 1}').extra == {"a": 1}


@pytest.mark.parametrize(("value", "match"), [
    ("postgresql://u:p@h:notaport/db", r"connection 'bad': the port in the URI is not a num"),
    ("just some text", r"connection 'bad': not a URI .* nor a JSON object"),
    ("{not json", r"connection 'bad': not valid JSON: .* at position 1"),
    ('["a"]', r"connection 'bad': not a URI"),
    ('{"host": "h"}', r"connection 'bad': JSON has no 'conn_type'"),
    ('{"conn_type": "http", "hots": "h"}',
     r"unknown field\(s\) \['hots'\]; valid: \['conn_type', 'description', 'extra', 'host'"),
    ('{"conn_type": "http", "port": 70000}', r"port 70000 is not in 0-65535"),
    ('{"conn_type": "http", "extra": "[1]"}', r"extra must be a JSON object, got list"),
    ("http://h/?__extra__=nope", r"extra is not valid JSON"),
    ('{"conn_type": " "}', r"JSON has no 'conn_type'|conn_type is empty"),
])
def test_malformed_connections_name_the_problem(value: str, match: str) -> None:
    with pytest.raises(InvalidConnectionError, match=match) as info:
        Connection.from_string("bad", value)
    assert isinstance(info.value, MlpipeError)


def test_a_malformed_uri_never_echoes_a_registered_password() -> None:
    from mlpipe.connections import mask_secret

    mask_secret("p4ss-in-uri-9f1c")
    with pytest.raises(InvalidConnectionError, match=r"\*\*\*") as info:
        Connection.from_string("bad", '{"conn_type": "x", "password": "p4ss-in-uri-9f1c", '
                                      '"port": "p4ss-in-uri-9f1c"}')
    assert "p4ss-in-uri-9f1c" not in str(info.value)
