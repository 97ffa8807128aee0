"""Where connections and variables are looked up: a search path of secrets backends.

As in Airflow, the environment comes first (``MLPIPE_CONN_<ID>``, ``MLPIPE_VAR_<NAME>``),
then the metadata database. The database backend lives in ``mlpipe.store`` and is named
here by its dotted path and imported on first use, so this package (and the hooks and
operators above it) never depends on the store at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mlpipe.connections.connection import Connection
from mlpipe.connections.variables import load_value, to_json_text, value_text
from mlpipe.errors import ConnectionNotFoundError, VariableNotFoundError
from mlpipe.masking import is_sensitive_name, secrets_masker, string_leaves

CONN_PREFIX = "MLPIPE_CONN_"
VAR_PREFIX = "MLPIPE_VAR_"
_MISSING: Any = object()


class SecretsBackend(Protocol):
    """A source of connections and variables (variables as stored JSON text)."""

    def get_connection(self, conn_id: str) -> Connection | None: ...

    def connection_ids(self) -> list[str]: ...

    def get_variable(self, key: str) -> str | None: ...

    def variable_keys(self) -> list[str]: ...


class EnvSecretsBackend:
    """``MLPIPE_CONN_<ID>`` (a URI or JSON) and ``MLPIPE_VAR_<NAME>`` (JSON or text)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    def get_connection(self, conn_id: str) -> Connection | None:
        value = self._environ.get(CONN_PREFIX + conn_id.upper())
        return Connection.from_string(conn_id, value) if value is not None else None

    def connection_ids(self) -> list[str]:
        return [k[len(CONN_PREFIX):].lower() for k in self._environ if k.startswith(CONN_PREFIX)]

    def get_variable(self, key: str) -> str | None:
        value = self._environ.get(VAR_PREFIX + key.upper())
        return to_json_text(value) if value is not None else None

    def variable_keys(self) -> list[str]:
        return [k[len(VAR_PREFIX):].lower() for k in self._environ if k.startswith(VAR_PREFIX)]


def default_backends() -> list[SecretsBackend]:
    """Fresh instances of the default search path: the environment, then the configured
    metadata database (its backend imported here, on first use)."""
    from mlpipe.connections.metastore_backend import MetastoreSecretsBackend

    return [EnvSecretsBackend(), MetastoreSecretsBackend()]


def get_connection(conn_id: str, *,
                   backends: Sequence[SecretsBackend] | None = None) -> Connection:
    """The connection ``conn_id`` from the first backend that has it.

    Its secrets are registered with the masker, so logs show them as ``***``.

    Raises:
        ConnectionNotFoundError: no backend has it (the message lists the known ids).
    """
    search = list(backends) if backends is not None else default_backends()
    for backend in search:
        conn = backend.get_connection(conn_id)
        if conn is not None:
            secrets_masker().add_all(conn.secrets())
            return conn
    raise ConnectionNotFoundError(conn_id, [i for b in search for i in b.connection_ids()])


def get_variable(key: str, default: Any = _MISSING, *, deserialize_json: bool = False,
                 backends: Sequence[SecretsBackend] | None = None) -> Any:
    """A variable's text (or its JSON value with ``deserialize_json``) from the first backend.

    A variable whose name contains secret/password/token/key is registered with the masker.

    Raises:
        VariableNotFoundError: no backend has it and no ``default`` was given.
    """
    search = list(backends) if backends is not None else default_backends()
    for backend in search:
        stored = backend.get_variable(key)
        if stored is not None:
            if is_sensitive_name(key):
                secrets_masker().add_all([value_text(stored), *string_leaves(load_value(stored))])
            return load_value(stored) if deserialize_json else value_text(stored)
    if default is not _MISSING:
        return default
    raise VariableNotFoundError(key, [k for b in search for k in b.variable_keys()])
