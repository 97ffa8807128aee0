"""Connections, variables and secret masking.

``get_connection(conn_id)`` and ``get_variable(key)`` look in the environment
(``MLPIPE_CONN_<ID>``, ``MLPIPE_VAR_<NAME>``) and then the metadata database; whatever they
return that is secret is masked as ``***`` in task logs from then on.

May import: mlpipe.settings, mlpipe.store (the secret rows), mlpipe.errors, mlpipe.masking.
"""

from __future__ import annotations

from mlpipe.connections.backends import (
    EnvSecretsBackend,
    SecretsBackend,
    default_backends,
    get_connection,
    get_variable,
)
from mlpipe.connections.connection import Connection
from mlpipe.connections.crypto import FernetCipher, generate_key
from mlpipe.errors import (
    ConnectionExistsError,
    ConnectionFailedError,
    ConnectionNotFoundError,
    ConnectionsError,
    DecryptionError,
    FernetKeyError,
    HookError,
    InvalidConnectionError,
    VariableNotFoundError,
)
from mlpipe.masking import is_sensitive_name, mask_secret, redact

__all__ = [
    "Connection",
    "ConnectionExistsError",
    "ConnectionFailedError",
    "ConnectionNotFoundError",
    "ConnectionsError",
    "DecryptionError",
    "EnvSecretsBackend",
    "FernetCipher",
    "FernetKeyError",
    "HookError",
    "InvalidConnectionError",
    "SecretsBackend",
    "VariableNotFoundError",
    "default_backends",
    "generate_key",
    "get_connection",
    "get_variable",
    "is_sensitive_name",
    "mask_secret",
    "redact",
]
