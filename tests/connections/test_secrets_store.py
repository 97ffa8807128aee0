"""``SecretsStore`` on SQLite and PostgreSQL: round trips, encryption at rest, clear errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from mlpipe.connections import (
    Connection,
    ConnectionExistsError,
    DecryptionError,
    FernetKeyError,
    generate_key,
)
from mlpipe.connections.metastore_backend import SecretsStore

Make = Callable[..., SecretsStore]


def _conn(secret: str) -> Connection:
    return Connection("warehouse", "postgresql", host="db.local", port=5432, login="etl",
                      password=secret, schema="dw",
                      extra={"sslmode": "require", "api_token": secret + "-tok"},
                      description="the warehouse")


def _raw(store: SecretsStore, sql: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_connections_round_trip_unencrypted(make_store: Make, secret: str) -> None:
    store = make_store()
    store.add_connection(_conn(secret))
    store.add_connection(Connection("alpha", "sqlite", host="/tmp/a.db"))

    assert store.get_connection("warehouse") == _conn(secret)
    assert [c.conn_id for c in store.list_connections()] == ["alpha", "warehouse"]
    assert store.connection_ids() == ["alpha", "warehouse"]
    assert store.get_connection("nope") is None
    assert store.delete_connection("alpha") is True
    assert store.delete_connection("alpha") is False
    assert store.connection_ids() == ["warehouse"]


def test_adding_an_id_twice_is_refused(make_store: Make, secret: str) -> None:
    store = make_store()
    store.add_connection(_conn(secret))

    with pytest.raises(ConnectionExistsError,
                       match=r"connection 'warehouse' exists already; delete it first"):
        store.add_connection(_conn(secret))


def test_with_a_key_password_and_extra_are_tokens_at_rest(make_store: Make, secret: str,
                                                          fernet_key: str) -> None:
    store = make_store(fernet_key)
    store.add_connection(_conn(secret))

    [(password, extra, encrypted, extra_encrypted)] = _raw(
        store, "select password, extra, is_encrypted, is_extra_encrypted from connection")
    assert secret not in str(password) and secret not in str(extra)
    assert "sslmode" not in str(extra)
    assert str(password).startswith("gAAAA") and encrypted and extra_encrypted
    assert store.get_connection("warehouse") == _conn(secret)


def test_an_encrypted_connection_without_the_key_is_one_clear_error(
        make_store: Make, secret: str, fernet_key: str) -> None:
    make_store(fernet_key).add_connection(_conn(secret))

    with pytest.raises(DecryptionError, match=r"connection 'warehouse' is stored encrypted "
                                              r"and MLPIPE_FERNET_KEY is not set"):
        make_store(None).get_connection("warehouse")
    with pytest.raises(DecryptionError, match=r"connection 'warehouse' is stored encrypted "
                                              r"and the Fernet key does not decrypt it "
                                              r"\(the key changed: set MLPIPE_FERNET_KEY=new,old"):
        make_store(generate_key()).list_connections()


def test_a_rotated_key_list_still_reads_rows_of_the_old_key(make_store: Make, secret: str,
                                                            fernet_key: str) -> None:
    make_store(fernet_key).add_connection(_conn(secret))

    rotated = make_store(f"{generate_key()},{fernet_key}")

    got = rotated.get_connection("warehouse")
    assert got is not None and got.password == secret


def test_an_invalid_key_says_how_to_make_one(make_store: Make, secret: str) -> None:
    with pytest.raises(FernetKeyError, match=r"MLPIPE_FERNET_KEY is not a valid Fernet key "
                                             r".*Fernet.generate_key"):
        make_store("not-a-key").add_connection(_conn(secret))


def test_a_connection_without_secrets_is_stored_without_tokens(make_store: Make,
                                                               fernet_key: str) -> None:
    store = make_store(fernet_key)
    store.add_connection(Connection("plain", "http", host="example.org"))

    assert _raw(store, "select password, extra, is_encrypted from connection") == [
        (None, None, False)]
    assert make_store(None).get_connection("plain") == Connection("plain", "http",
                                                                  host="example.org")


def test_variables_round_trip_and_replace(make_store: Make) -> None:
    store = make_store()
    store.set_variable("cfg", '{"lr": 0.1}', description="training")
    store.set_variable("name", '"hello"')
    store.set_variable("cfg", '{"lr": 0.2}')

    assert store.get_variable("cfg") == '{"lr": 0.2}'
    assert store.get_variable("missing") is None
    assert [(v.key, v.value, v.is_encrypted) for v in store.list_variables()] == [
        ("cfg", '{"lr": 0.2}', False), ("name", '"hello"', False)]
    assert store.variable_keys() == ["cfg", "name"]
    assert store.delete_variable("name") is True
    assert store.delete_variable("name") is False


def test_only_json_is_stored_as_a_variable(make_store: Make) -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        make_store().set_variable("raw", "not json")


def test_encrypted_variables(make_store: Make, fernet_key: str, secret: str) -> None:
    make_store(fernet_key).set_variable("api_token", f'"{secret}"')

    [(value, encrypted)] = _raw(make_store(), "select val, is_encrypted from variable")
    assert secret not in str(value) and encrypted
    assert make_store(fernet_key).get_variable("api_token") == f'"{secret}"'
    with pytest.raises(DecryptionError, match=r"variable 'api_token' is stored encrypted and "
                                              r"the Fernet key does not decrypt it"):
        make_store(generate_key()).get_variable("api_token")
    with pytest.raises(DecryptionError, match=r"variable 'api_token' .* is not set"):
        make_store(None).list_variables()
