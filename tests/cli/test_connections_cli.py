"""``mlpipe connections ...`` and ``mlpipe variables ...`` as a user runs them."""

from __future__ import annotations

import gc
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from mlpipe.cli.main import app
from mlpipe.connections import generate_key
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore

Invoke = Callable[..., Result]
POSTGRES_URI = os.environ.get("MLPIPE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test"
                              ).replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def mlpipe() -> Invoke:
    """``mlpipe("connections", "list")``: the command's result."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def secret() -> str:
    return f"pw-{uuid.uuid4().hex[:12]}"


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def one_line_error(result: Result) -> str:
    """The single ``error: ...`` line a failing command prints (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def raw_rows(sql: str) -> list[tuple[object, ...]]:
    store = MetadataStore.open(load_settings().database)
    try:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        store.dispose()


# -- connections -------------------------------------------------------------------------


def test_add_list_get_delete(mlpipe: Invoke, secret: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert "connection pg added: postgresql at postgresql://etl:***@db.local:5432/dw" in ok(
        mlpipe("connections", "add", "pg", "--conn-uri",
               f"postgresql://etl:{secret}@db.local:5432/dw?sslmode=require"))
    ok(mlpipe("connections", "add", "s3", "--conn-type", "aws", "--conn-login", "AKIA",
              "--conn-password", secret, "--conn-extra",
              f'{{"region_name": "eu-west-1", "aws_session_token": "t-{secret}"}}'))
    monkeypatch.setenv("MLPIPE_CONN_FROM_ENV", "sqlite:////tmp/x.db")

    listed = mlpipe("connections", "list", "-o", "json")
    table = ok(mlpipe("connections", "list"))

    assert secret not in listed.output and secret not in table
    rows = json.loads(ok(listed))
    assert [(r["conn_id"], r["source"]) for r in rows] == [
        ("from_env", "env"), ("pg", "db"), ("s3", "db")]
    assert rows[1] == {"conn_id": "pg", "conn_type": "postgresql", "source": "db",
                       "host": "db.local", "port": 5432, "login": "etl", "password": "***",
                       "schema": "dw", "extra": {"sslmode": "require"}}
    assert rows[2]["extra"] == {"region_name": "eu-west-1", "aws_session_token": "***"}
    assert "***" in table and "db.local" in table
    got = json.loads(ok(mlpipe("connections", "get", "s3", "-o", "json")))
    assert [(g["conn_id"], g["login"], g["password"]) for g in got] == [("s3", "AKIA", "***")]

    assert "connection pg deleted" in ok(mlpipe("connections", "delete", "pg"))
    assert [r["conn_id"] for r in json.loads(ok(mlpipe("connections", "list", "-o", "json")))
            ] == ["from_env", "s3"]


def test_errors_are_one_line(mlpipe: Invoke) -> None:
    ok(mlpipe("connections", "add", "dup", "--conn-uri", "http://h"))

    assert one_line_error(mlpipe("connections", "add", "dup", "--conn-uri", "http://h")) == (
        "error: connection 'dup' exists already; delete it first with 'mlpipe connections "
        "delete dup'")
    assert "known: ['dup']; did you mean 'dup'?" in one_line_error(
        mlpipe("connections", "get", "dupe"))
    assert "connection 'x': --conn-uri cannot be combined with --conn-type" in one_line_error(
        mlpipe("connections", "add", "x", "--conn-uri", "http://h", "--conn-type", "http"))
    assert "connection 'x': give --conn-uri URI, or --conn-type TYPE" in one_line_error(
        mlpipe("connections", "add", "x"))
    assert "connection 'x': extra is not valid JSON" in one_line_error(
        mlpipe("connections", "add", "x", "--conn-type", "http", "--conn-extra", "{oops"))
    assert "connection 'nope' not found" in one_line_error(
        mlpipe("connections", "delete", "nope"))


def test_an_env_connection_cannot_be_deleted(mlpipe: Invoke,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_ENVONLY", "http://h")

    assert "set by MLPIPE_CONN_ENVONLY in the environment; unset that variable" in (
        one_line_error(mlpipe("connections", "delete", "envonly")))


def test_with_a_fernet_key_secrets_are_encrypted_at_rest(
        mlpipe: Invoke, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    key = generate_key()
    monkeypatch.setenv("MLPIPE_FERNET_KEY", key)
    ok(mlpipe("connections", "add", "enc", "--conn-uri", f"postgresql://u:{secret}@h/d"))

    [(password, encrypted)] = raw_rows("select password, is_encrypted from connection")
    assert secret not in str(password) and encrypted
    assert json.loads(ok(mlpipe("connections", "get", "enc", "-o", "json")))[0]["host"] == "h"

    monkeypatch.delenv("MLPIPE_FERNET_KEY")
    assert one_line_error(mlpipe("connections", "get", "enc")) == (
        "error: connection 'enc' is stored encrypted and MLPIPE_FERNET_KEY is not set and "
        f"there is no key file {str(Path.cwd() / 'mlpipe_home' / 'fernet.key')!r}; set it "
        "to the key it was stored with")
    monkeypatch.setenv("MLPIPE_FERNET_KEY", generate_key())
    assert "does not decrypt it" in one_line_error(mlpipe("connections", "list"))


def test_without_a_key_secrets_are_encrypted_with_a_private_key_file(
        mlpipe: Invoke, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path.cwd() / "fresh" / "home"  # created by mlpipe, not by the test
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    output = ok(mlpipe("connections", "add", "c", "--conn-uri", f"http://u:{secret}@h"))

    assert secret not in output and "unencrypted" not in output
    [(password, encrypted)] = raw_rows("select password, is_encrypted from connection")
    assert secret not in str(password) and encrypted
    key_file = home / "fernet.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "mlpipe.db").stat().st_mode) == 0o600
    for path in home.iterdir():  # the database, its WAL, anything else: no secret in clear
        assert secret.encode() not in path.read_bytes(), path
    # a later process reads the same key file
    assert json.loads(ok(mlpipe("connections", "get", "c", "-o", "json")))[0]["password"] == "***"
    from mlpipe.connections import get_connection

    assert get_connection("c").password == secret


def test_rotate_fernet_key_re_encrypts_every_secret_with_the_new_key(
        mlpipe: Invoke, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("MLPIPE_FERNET_KEY", old)
    ok(mlpipe("connections", "add", "c", "--conn-uri", f"postgresql://u:{secret}@h/d"))
    ok(mlpipe("variables", "set", "api_token", secret))
    [(before,)] = raw_rows("select password from connection")

    monkeypatch.setenv("MLPIPE_FERNET_KEY", f"{new},{old}")
    assert "re-encrypted the secrets of 2 connection(s) and variable(s)" in ok(
        mlpipe("connections", "rotate-fernet-key"))

    [(after,)] = raw_rows("select password from connection")
    assert after != before and secret not in str(after)
    monkeypatch.setenv("MLPIPE_FERNET_KEY", new)  # the old key is no longer needed
    assert ok(mlpipe("variables", "get", "api_token", "--reveal")) == f"{secret}\n"
    monkeypatch.setenv("MLPIPE_FERNET_KEY", old)
    assert "the Fernet key does not decrypt it (the key changed: set " \
           "MLPIPE_FERNET_KEY=new,old" in one_line_error(mlpipe("connections", "get", "c"))


def test_rotating_without_the_old_key_changes_nothing(
        mlpipe: Invoke, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    old = generate_key()
    monkeypatch.setenv("MLPIPE_FERNET_KEY", old)
    ok(mlpipe("connections", "add", "c", "--conn-uri", f"postgresql://u:{secret}@h/d"))
    rows = raw_rows("select password, extra from connection")

    monkeypatch.setenv("MLPIPE_FERNET_KEY", generate_key())
    assert "none of the keys in MLPIPE_FERNET_KEY decrypts it; list the old key after the " \
           "new one" in one_line_error(mlpipe("connections", "rotate-fernet-key"))
    assert raw_rows("select password, extra from connection") == rows


def test_testing_a_sqlite_connection(mlpipe: Invoke, tmp_path: Path) -> None:
    ok(mlpipe("connections", "add", "lite", "--conn-uri", f"sqlite:///{tmp_path / 'a.db'}"))

    assert "connection lite works" in ok(mlpipe("connections", "test", "lite"))
    assert "select 1 returned 1" in ok(mlpipe("connections", "test", "lite"))


def test_testing_a_bad_postgres_login_is_one_line_with_the_secret_masked(
        mlpipe: Invoke, secret: str, postgres_admin: object) -> None:
    # postgres_admin: the server must be up (skips with the reason, fails on CI)
    uri = POSTGRES_URI.replace("postgresql://postgres@", f"postgresql://nobody_x:{secret}@")
    ok(mlpipe("connections", "add", "pgbad", "--conn-uri", uri))

    line = one_line_error(mlpipe("connections", "test", "pgbad"))

    assert line.startswith("error: connection 'pgbad' (postgresql://nobody_x:***@127.0.0.1:5432/"
                           "test): cannot connect: ")
    assert secret not in line


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._server.server_port}"
    gc.collect()  # close the clients' keep-alive sockets, or stopping waits for them
    server.stop()


def test_testing_s3_connections(mlpipe: Invoke, s3_endpoint: str, secret: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="k", aws_secret_access_key="s").create_bucket(Bucket="data")
    monkeypatch.setenv("MLPIPE_CONN_S3_OK", f"s3://AKIA:{secret}@/data?endpoint_url="
                                            f"{s3_endpoint}&region_name=us-east-1")
    monkeypatch.setenv("MLPIPE_CONN_S3_DOWN", f"s3://AKIA:{secret}@/?endpoint_url="
                                              "http://127.0.0.1:9&max_attempts=1")

    assert "listed bucket 'data'" in ok(mlpipe("connections", "test", "s3_ok"))
    line = one_line_error(mlpipe("connections", "test", "s3_down"))
    assert line.startswith("error: connection 's3_down' (http://127.0.0.1:9): list buckets: "
                           "Could not connect")
    assert secret not in line


def test_an_untestable_type_says_which_are(mlpipe: Invoke) -> None:
    ok(mlpipe("connections", "add", "files", "--conn-type", "ftp", "--conn-host", "f"))

    assert "no hook for connection type 'ftp'; known: [" in one_line_error(
        mlpipe("connections", "test", "files"))


# -- variables ---------------------------------------------------------------------------


def test_variables_set_get_list_delete(mlpipe: Invoke, monkeypatch: pytest.MonkeyPatch,
                                       secret: str) -> None:
    ok(mlpipe("variables", "set", "cfg", '{"lr": 0.1}', "--description", "training"))
    ok(mlpipe("variables", "set", "greeting", "hello world"))
    ok(mlpipe("variables", "set", "api_token", secret))
    monkeypatch.setenv("MLPIPE_VAR_EPOCHS", "3")

    assert ok(mlpipe("variables", "get", "cfg")) == '{"lr": 0.1}\n'
    assert ok(mlpipe("variables", "get", "greeting")) == "hello world\n"
    assert ok(mlpipe("variables", "get", "greeting", "--json")) == '"hello world"\n'
    assert ok(mlpipe("variables", "get", "epochs")) == "3\n"
    assert ok(mlpipe("variables", "get", "api_token")) == "***\n"
    assert ok(mlpipe("variables", "get", "api_token", "--reveal")) == f"{secret}\n"
    listed = ok(mlpipe("variables", "list", "-o", "json"))
    assert secret not in listed and secret not in ok(mlpipe("variables", "list"))
    assert json.loads(listed) == [
        {"key": "api_token", "source": "db", "is_encrypted": True, "description": None,
         "value": "***"},
        {"key": "cfg", "source": "db", "is_encrypted": True, "description": "training",
         "value": '{"lr": 0.1}'},
        {"key": "epochs", "source": "env", "is_encrypted": False, "description": None,
         "value": "3"},
        {"key": "greeting", "source": "db", "is_encrypted": True, "description": None,
         "value": "hello world"},
    ]

    assert "variable greeting deleted" in ok(mlpipe("variables", "delete", "greeting"))
    assert one_line_error(mlpipe("variables", "get", "greeting")).startswith(
        "error: variable 'greeting' is not set; known: ['api_token', 'cfg', 'epochs']")
    assert "set by MLPIPE_VAR_EPOCHS in the environment" in one_line_error(
        mlpipe("variables", "delete", "epochs"))


def test_variables_are_encrypted_with_a_key(mlpipe: Invoke, monkeypatch: pytest.MonkeyPatch,
                                            secret: str) -> None:
    monkeypatch.setenv("MLPIPE_FERNET_KEY", generate_key())

    assert "(encrypted)" in ok(mlpipe("variables", "set", "db_password", secret))

    [(value, encrypted)] = raw_rows("select val, is_encrypted from variable")
    assert secret not in str(value) and encrypted
    assert ok(mlpipe("variables", "get", "db_password", "--reveal")) == f"{secret}\n"
    monkeypatch.setenv("MLPIPE_FERNET_KEY", generate_key())
    assert "variable 'db_password' is stored encrypted and the Fernet key does not " \
           "decrypt it" in one_line_error(mlpipe("variables", "get", "db_password"))


def test_commands_have_help(mlpipe: Invoke) -> None:
    for group in ("connections", "variables"):
        assert "Usage" in ok(mlpipe(group, "--help"))
