"""Connections and variables in the metadata database, secrets Fernet-encrypted at rest.

A connection's password and extra and a variable's value are stored as Fernet tokens (the
row's ``is_encrypted`` flags say so), with ``MLPIPE_FERNET_KEY`` or, without it, the key file
``$MLPIPE_HOME/fernet.key`` generated on the first secret written. Reading an encrypted row
without the key, or with another key, raises ``DecryptionError``: never a token passed off
as the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, insert, inspect, make_url, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from mlpipe.connections.connection import Connection, parse_extra
from mlpipe.connections.crypto import FernetCipher
from mlpipe.connections.errors import ConnectionExistsError
from mlpipe.errors import StoreError
from mlpipe.store import database
from mlpipe.store.rows import ConnectionRow, VariableRow

_CONN = cast(Table, ConnectionRow.__table__)
_VAR = cast(Table, VariableRow.__table__)


@dataclass(frozen=True)
class StoredVariable:
    """A variable row, decrypted: ``value`` is the stored JSON text."""

    key: str
    value: str
    description: str | None
    is_encrypted: bool


class SecretsStore:
    """Connections and variables of one metadata database (a ``SecretsBackend``)."""

    def __init__(self, engine: Engine, *, fernet_key: str | None = None,
                 key_file: Path | None = None) -> None:
        self.engine = engine
        self.writer = engine.execution_options(immediate=True)
        self.cipher = FernetCipher(fernet_key, key_file=key_file)

    def rotate_fernet_key(self) -> int:
        """Re-encrypt every stored secret with the first key; returns how many were.

        Secrets stored in clear (by an older mlpipe) are encrypted too. One transaction:
        a row any key fails to decrypt leaves every row as it was.
        """
        changed = 0
        with self.writer.begin() as db:
            for row in db.execute(select(_CONN)).all():
                values = {}
                for column, flag in (("password", "is_encrypted"),
                                     ("extra", "is_extra_encrypted")):
                    value = getattr(row, column)
                    if value is not None:
                        values[column] = self._reseal(value, getattr(row, flag), "connection",
                                                      row.conn_id)
                        values[flag] = True
                if values:
                    db.execute(update(_CONN).where(_CONN.c.conn_id == row.conn_id)
                               .values(**values))
                    changed += 1
            for row in db.execute(select(_VAR)).all():
                db.execute(update(_VAR).where(_VAR.c.key == row.key).values(
                    val=self._reseal(row.val, row.is_encrypted, "variable", row.key),
                    is_encrypted=True))
                changed += 1
        return changed

    def _reseal(self, value: str, encrypted: bool, kind: str, name: str) -> str:
        if encrypted:
            return self.cipher.rotate(value, kind=kind, name=name)
        return self.cipher.encrypt(value)

    # -- connections -----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        """Store a new connection; ``ConnectionExistsError`` if the id is taken."""
        encrypt = self.cipher.enabled
        extra = json.dumps(conn.extra) if conn.extra else None
        values = {
            "conn_id": conn.conn_id, "conn_type": conn.conn_type,
            "description": conn.description, "host": conn.host, "schema": conn.schema,
            "login": conn.login, "port": conn.port,
            "password": self._seal(conn.password),
            "extra": self._seal(extra),
            "is_encrypted": encrypt and conn.password is not None,
            "is_extra_encrypted": encrypt and extra is not None,
        }
        try:
            with self.writer.begin() as db:
                db.execute(insert(_CONN).values(**values))
        except IntegrityError:
            raise ConnectionExistsError(conn.conn_id) from None

    def get_connection(self, conn_id: str) -> Connection | None:
        with self.engine.connect() as db:
            row = db.execute(select(_CONN).where(_CONN.c.conn_id == conn_id)).first()
        return self._connection(row) if row is not None else None

    def list_connections(self) -> list[Connection]:
        with self.engine.connect() as db:
            rows = db.execute(select(_CONN).order_by(_CONN.c.conn_id)).all()
        return [self._connection(r) for r in rows]

    def connection_ids(self) -> list[str]:
        with self.engine.connect() as db:
            return list(db.scalars(select(_CONN.c.conn_id).order_by(_CONN.c.conn_id)))

    def delete_connection(self, conn_id: str) -> bool:
        with self.writer.begin() as db:
            return bool(db.execute(delete(_CONN).where(_CONN.c.conn_id == conn_id)).rowcount)

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
        values = {"val": self._seal(value), "is_encrypted": self.cipher.enabled,
                  "description": description}
        for _ in range(2):  # a concurrent insert of the same key: update it the second time
            try:
                with self.writer.begin() as db:
                    if db.execute(update(_VAR).where(_VAR.c.key == key).values(**values)
                                  ).rowcount:
                        return
                    db.execute(insert(_VAR).values(key=key, **values))
                    return
            except IntegrityError:
                continue
        raise StoreError(f"variable {key!r} could not be written; try again")

    def get_variable(self, key: str) -> str | None:
        with self.engine.connect() as db:
            row = db.execute(select(_VAR).where(_VAR.c.key == key)).first()
        return self._variable(row).value if row is not None else None

    def list_variables(self) -> list[StoredVariable]:
        with self.engine.connect() as db:
            rows = db.execute(select(_VAR).order_by(_VAR.c.key)).all()
        return [self._variable(r) for r in rows]

    def variable_keys(self) -> list[str]:
        with self.engine.connect() as db:
            return list(db.scalars(select(_VAR.c.key).order_by(_VAR.c.key)))

    def delete_variable(self, key: str) -> bool:
        with self.writer.begin() as db:
            return bool(db.execute(delete(_VAR).where(_VAR.c.key == key)).rowcount)

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
        url = self.url
        if _is_missing_sqlite_file(url):
            yield None
            return
        engine = database.make_engine(url)
        try:
            try:
                present = inspect(engine).has_table(_CONN.name)
            except OperationalError as exc:
                raise StoreError(f"cannot reach the metadata database "
                                 f"{engine.url.render_as_string(hide_password=True)!r}: "
                                 f"{exc.orig}") from None
            yield SecretsStore(engine, fernet_key=self._fernet_key,
                               key_file=self._key_file) if present else None
        finally:
            engine.dispose()

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


def _is_missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    path = parsed.database
    return path is not None and path not in ("", ":memory:") and not Path(path).exists()
