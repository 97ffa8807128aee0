"""Connections and variables in the metadata database, secrets Fernet-encrypted at rest.

A connection's password and extra and a variable's value are stored as Fernet tokens (the
row's ``is_encrypted`` flags say so), with ``MLPIPE_FERNET_KEY`` or, without it, the key file
``$MLPIPE_HOME/fernet.key`` generated on the first secret written. Reading an encrypted row
without the key, or with another key, raises ``DecryptionError``: never a token passed off
as the value. The rows themselves are the store's (``store/repositories/secret_rows.py``);
sealing them and turning them into ``Connection`` objects happens here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpipe.connections.connection import Connection, parse_extra
from mlpipe.connections.crypto import FernetCipher
from mlpipe.store.repositories.secret_rows import SecretRows, open_secret_rows


@dataclass(frozen=True)
class StoredVariable:
    """A variable row, decrypted: ``value`` is the stored JSON text."""

    key: str
    value: str
    description: str | None
    is_encrypted: bool


class SecretsStore:
    """Connections and variables of one metadata database (a ``SecretsBackend``)."""

    def __init__(self, engine: Any, *, fernet_key: str | None = None,
                 key_file: Path | None = None, rows: SecretRows | None = None) -> None:
        self.rows = rows if rows is not None else SecretRows(engine)
        self.engine = self.rows.engine
        self.cipher = FernetCipher(fernet_key, key_file=key_file)

    def rotate_fernet_key(self) -> int:
        """Re-encrypt every stored secret with the first key; returns how many were.

        Secrets stored in clear (by an older mlpipe) are encrypted too. One transaction:
        a row any key fails to decrypt leaves every row as it was.
        """
        return self.rows.reseal_all(self._reseal)

    def _reseal(self, value: str, encrypted: bool, kind: str, name: str) -> str:
        if encrypted:
            return self.cipher.rotate(value, kind=kind, name=name)
        return self.cipher.encrypt(value)

    # -- connections -----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        """Store a new connection; ``ConnectionExistsError`` if the id is taken."""
        encrypt = self.cipher.enabled
        extra = json.dumps(conn.extra) if conn.extra else None
        self.rows.insert_connection({
            "conn_id": conn.conn_id, "conn_type": conn.conn_type,
            "description": conn.description, "host": conn.host, "schema": conn.schema,
            "login": conn.login, "port": conn.port,
            "password": self._seal(conn.password),
            "extra": self._seal(extra),
            "is_encrypted": encrypt and conn.password is not None,
            "is_extra_encrypted": encrypt and extra is not None,
        })

    def get_connection(self, conn_id: str) -> Connection | None:
        row = self.rows.connection_row(conn_id)
        return self._connection(row) if row is not None else None

    def list_connections(self) -> list[Connection]:
        return [self._connection(r) for r in self.rows.connection_rows()]

    def connection_ids(self) -> list[str]:
        return self.rows.connection_ids()

    def delete_connection(self, conn_id: str) -> bool:
        return self.rows.delete_connection(conn_id)

    def _connection(self, row: Any) -> Connection:
        password, extra = row.password, row.extra
        if row.is_encrypted and password is not None:
            password = self.cipher.decrypt(password, kind="connection", name=row.conn_id)
        if row.is_extra_encrypted and extra is not None:
            extra = self.cipher.decrypt(extra, kind="connection", name=row.conn_id)
        return Connection(row.conn_id, row.conn_type, host=row.host, port=row.port,
                          login=row.login, password=password, schema=row.schema,
                          extra=parse_extra(row.conn_id, extra), description=row.description)

    # -- variables -------------------------------------------------------------------------

    def set_variable(self, key: str, value: str, *, description: str | None = None) -> None:
        """Create or replace a variable; ``value`` is JSON text (see ``connections.variables``)."""
        json.loads(value)  # only JSON is stored: callers convert text first
        self.rows.upsert_variable(key, {"val": self._seal(value),
                                        "is_encrypted": self.cipher.enabled,
                                        "description": description})

    def get_variable(self, key: str) -> str | None:
        row = self.rows.variable_row(key)
        return self._variable(row).value if row is not None else None

    def list_variables(self) -> list[StoredVariable]:
        return [self._variable(r) for r in self.rows.variable_rows()]

    def variable_keys(self) -> list[str]:
        return self.rows.variable_keys()

    def delete_variable(self, key: str) -> bool:
        return self.rows.delete_variable(key)

    def _variable(self, row: Any) -> StoredVariable:
        value = row.val
        if row.is_encrypted:
            value = self.cipher.decrypt(value, kind="variable", name=row.key)
        return StoredVariable(row.key, value, row.description, bool(row.is_encrypted))

    def _seal(self, text: str | None) -> str | None:
        if text is None or not self.cipher.enabled:
            return text
        return self.cipher.encrypt(text)


class MetastoreSecretsBackend:
    """The configured metadata database as a ``SecretsBackend``, opened for each lookup.

    ``url`` and ``fernet_key`` default to the settings (``MLPIPE_DATABASE_URL`` or
    ``$MLPIPE_HOME/mlpipe.db``, ``MLPIPE_FERNET_KEY``), read on first use. A database that
    does not exist yet, or has no schema, holds nothing: a lookup never creates one.
    """

    def __init__(self, url: str | None = None, *, fernet_key: str | None = None,
                 key_file: Path | None = None) -> None:
        self._url = url
        self._fernet_key = fernet_key
        self._key_file = key_file

    @property
    def url(self) -> str:
        """The database URL (from the settings unless given)."""
        if self._url is None:
            from mlpipe.settings import load_settings

            settings = load_settings()
            self._url, self._fernet_key = settings.database, settings.fernet_key
            self._key_file = settings.fernet_key_file
        return self._url

    @property
    def fernet_key(self) -> str | None:
        """The Fernet key (from the settings unless a URL was given)."""
        _ = self.url
        return self._fernet_key

    @property
    def key_file(self) -> Path | None:
        """The home's Fernet key file (from the settings unless a URL was given)."""
        _ = self.url
        return self._key_file

    @contextmanager
    def _store(self) -> Iterator[SecretsStore | None]:
        with open_secret_rows(self.url) as rows:
            yield None if rows is None else SecretsStore(
                rows.engine, fernet_key=self._fernet_key, key_file=self._key_file, rows=rows)

    def get_connection(self, conn_id: str) -> Connection | None:
        with self._store() as store:
            return store.get_connection(conn_id) if store else None

    def connection_ids(self) -> list[str]:
        with self._store() as store:
            return store.connection_ids() if store else []

    def get_variable(self, key: str) -> str | None:
        with self._store() as store:
            return store.get_variable(key) if store else None

    def variable_keys(self) -> list[str]:
        with self._store() as store:
            return store.variable_keys() if store else []
