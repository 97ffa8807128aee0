"""``get_connection`` / ``get_variable``: the environment first, then the metadata DB."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.connections import (
    Connection,
    ConnectionNotFoundError,
    DecryptionError,
    EnvSecretsBackend,
    VariableNotFoundError,
    get_connection,
    get_variable,
    redact,
)
from mlpipe.connections.metastore_backend import MetastoreSecretsBackend, SecretsStore
from mlpipe.errors import MlpipeError
from mlpipe.settings import load_settings


def test_the_environment_wins_over_the_database(monkeypatch: pytest.MonkeyPatch,
                                                configured_store: SecretsStore) -> None:
    configured_store.add_connection(Connection("warehouse", "postgresql", host="from-db"))
    monkeypatch.setenv("MLPIPE_CONN_WAREHOUSE", "postgresql://u:p@from-env:5432/dw")

    assert get_connection("warehouse").host == "from-env"


def test_the_database_is_used_when_the_environment_has_nothing(
        configured_store: SecretsStore, secret: str) -> None:
    configured_store.add_connection(Connection("warehouse", "postgresql", host="from-db",
                                               password=secret))

    conn = get_connection("warehouse")

    assert (conn.host, conn.password) == ("from-db", secret)


def test_env_ids_are_upper_cased_and_json_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_CONN_MY_S3", '{"conn_type": "aws", "login": "AKIA", '
                                            '"extra": {"region_name": "eu-west-1"}}')

    conn = get_connection("my_s3")

    assert (conn.conn_id, conn.conn_type, conn.extra) == (
        "my_s3", "aws", {"region_name": "eu-west-1"})


def test_an_unknown_id_names_it_and_lists_the_known_ones(
        monkeypatch: pytest.MonkeyPatch, configured_store: SecretsStore) -> None:
    monkeypatch.setenv("MLPIPE_CONN_AWS_DEFAULT", "s3://k:s@/")
    configured_store.add_connection(Connection("warehouse", "postgresql"))

    with pytest.raises(ConnectionNotFoundError,
                       match=r"connection 'aws_defualt' not found; known: \['aws_default', "
                             r"'warehouse'\]; did you mean 'aws_default'\?") as info:
        get_connection("aws_defualt")
    assert isinstance(info.value, MlpipeError)
    assert info.value.conn_id == "aws_defualt"


def test_a_lookup_never_creates_the_metadata_database() -> None:
    database = Path(load_settings().database.removeprefix("sqlite:///"))

    with pytest.raises(ConnectionNotFoundError, match=r"known: \[\]"):
        get_connection("nothing")
    assert not database.exists()


def test_an_encrypted_row_needs_the_configured_key(monkeypatch: pytest.MonkeyPatch,
                                                   configured_store: SecretsStore,
                                                   fernet_key: str, secret: str) -> None:
    SecretsStore(configured_store.engine, fernet_key=fernet_key).add_connection(
        Connection("enc", "http", password=secret))

    with pytest.raises(DecryptionError, match="connection 'enc' is stored encrypted"):
        get_connection("enc")
    monkeypatch.setenv("MLPIPE_FERNET_KEY", fernet_key)
    assert get_connection("enc").password == secret


def test_reading_a_connection_registers_its_secrets(monkeypatch: pytest.MonkeyPatch,
                                                    secret: str) -> None:
    monkeypatch.setenv("MLPIPE_CONN_S3", f"s3://AKIA:{secret}@/?aws_session_token=tok-{secret}")
    line = f"key={secret} token=tok-{secret}"
    assert redact(line) == line

    get_connection("s3")

    assert redact(line) == "key=*** token=***"


def test_backends_can_be_given(secret: str) -> None:
    env = EnvSecretsBackend({"MLPIPE_CONN_X": "http://h", "MLPIPE_VAR_Y": "1"})

    assert get_connection("x", backends=[env]).host == "h"
    assert get_variable("y", deserialize_json=True, backends=[env]) == 1
    with pytest.raises(ConnectionNotFoundError, match=r"'z' not found; known: \['x'\]"):
        get_connection("z", backends=[env])


@pytest.mark.parametrize(("raw", "text", "value"), [
    ("hello", "hello", "hello"),
    ('{"lr": 0.1}', '{"lr": 0.1}', {"lr": 0.1}),
    ("1.50", "1.50", 1.5),
    ('"quoted"', "quoted", "quoted"),
    ("007", "007", "007"),
])
def test_variable_text_and_json(monkeypatch: pytest.MonkeyPatch, raw: str, text: str,
                                value: object) -> None:
    monkeypatch.setenv("MLPIPE_VAR_V", raw)

    assert get_variable("v") == text
    assert get_variable("v", deserialize_json=True) == value


def test_variables_come_from_the_database_after_the_environment(
        monkeypatch: pytest.MonkeyPatch, configured_store: SecretsStore) -> None:
    configured_store.set_variable("both", '"db"')
    configured_store.set_variable("only_db", '[1, 2]')
    monkeypatch.setenv("MLPIPE_VAR_BOTH", "env")

    assert get_variable("both") == "env"
    assert get_variable("only_db", deserialize_json=True) == [1, 2]
    assert get_variable("only_db") == "[1, 2]"


def test_a_missing_variable_lists_the_known_or_gives_the_default(
        monkeypatch: pytest.MonkeyPatch, configured_store: SecretsStore) -> None:
    configured_store.set_variable("threshold", "0.9")
    monkeypatch.setenv("MLPIPE_VAR_EPOCHS", "3")

    assert get_variable("treshold", default=None) is None
    with pytest.raises(VariableNotFoundError,
                       match=r"variable 'treshold' is not set; known: \['epochs', 'threshold'\]"
                             r"; did you mean 'threshold'\?"):
        get_variable("treshold")


@pytest.mark.parametrize(("name", "masked"), [
    ("api_token", True), ("DB_PASSWORD", True), ("client_secret", True), ("ssh_key", True),
    ("epochs", False), ("bucket_name", False),
])
def test_sensitive_variables_are_registered_for_masking(
        monkeypatch: pytest.MonkeyPatch, secret: str, name: str, masked: bool) -> None:
    monkeypatch.setenv(f"MLPIPE_VAR_{name.upper()}", f'{{"nested": "{secret}"}}')

    get_variable(name)

    assert (redact(f"x {secret} y") == "x *** y") is masked


def test_the_metastore_backend_reads_the_settings_lazily(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    backend = MetastoreSecretsBackend()
    monkeypatch.setenv("MLPIPE_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("MLPIPE_FERNET_KEY", "k")

    assert backend.url == f"sqlite:///{tmp_path / 'other.db'}"
    assert backend.fernet_key == "k"
    assert backend.connection_ids() == [] and backend.variable_keys() == []
