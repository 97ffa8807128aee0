"""Errors of connections, variables, their encryption, and the hooks that use them.

Every message that could carry a secret goes through the masker first.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlpipe.errors.base import MlpipeError, did_you_mean
from mlpipe.masking import redact


class ConnectionsError(MlpipeError):
    """Root of the errors of connections, variables, secrets and hooks."""


class ConnectionNotFoundError(ConnectionsError):
    """No connection has the requested id, in the environment or the metadata DB."""

    def __init__(self, conn_id: str, known: Iterable[str]) -> None:
        self.conn_id = conn_id
        self.known = sorted(set(known))
        super().__init__(
            f"connection {conn_id!r} not found; known: {self.known}"
            + did_you_mean(conn_id, self.known)
            + f"; add it with 'mlpipe connections add {conn_id} --conn-uri ...' or set "
            f"MLPIPE_CONN_{conn_id.upper()}"
        )


class ConnectionExistsError(ConnectionsError):
    """A connection with that id is stored already."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        super().__init__(
            f"connection {conn_id!r} exists already; delete it first with "
            f"'mlpipe connections delete {conn_id}'"
        )


class InvalidConnectionError(ConnectionsError):
    """A connection's URI, JSON or extra is malformed."""

    def __init__(self, conn_id: str, problem: str) -> None:
        self.conn_id = conn_id
        super().__init__(redact(f"connection {conn_id!r}: {problem}"))


class VariableNotFoundError(ConnectionsError):
    """No variable has the requested key."""

    def __init__(self, key: str, known: Iterable[str]) -> None:
        self.key = key
        self.known = sorted(set(known))
        super().__init__(
            f"variable {key!r} is not set; known: {self.known}" + did_you_mean(key, self.known)
            + f"; set it with 'mlpipe variables set {key} VALUE' or MLPIPE_VAR_{key.upper()}"
        )


class FernetKeyError(ConnectionsError):
    """``MLPIPE_FERNET_KEY`` cannot be used as a Fernet key."""


class DecryptionError(ConnectionsError):
    """A stored connection or variable is encrypted and cannot be decrypted."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} is stored encrypted and {reason}")


class HookError(ConnectionsError):
    """A call made through a connection failed; names the connection and its endpoint."""

    def __init__(self, conn_id: str | None, endpoint: str, reason: str) -> None:
        self.conn_id = conn_id
        self.endpoint = redact(endpoint)
        self.reason = redact(reason)
        who = f"connection {conn_id!r}" if conn_id else "default credentials"
        super().__init__(f"{who} ({self.endpoint}): {self.reason}")


class ConnectionFailedError(HookError):
    """The endpoint cannot be reached, or it refused the credentials."""


class NotificationError(ConnectionsError):
    """A notifier cannot be built (bad URL, address) or its message could not be sent."""
