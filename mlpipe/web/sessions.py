"""Signed session cookies and their CSRF tokens.

A session cookie holds the user's name, a random CSRF token and a fingerprint of the user's
password hash, signed (HMAC, ``itsdangerous``) with ``MLPIPE_WEBSERVER_SECRET_KEY``: a
changed password or a deleted user ends every session at once, and a cookie older than
``MAX_AGE_S`` is refused. The key is generated into ``$MLPIPE_HOME/webserver_secret.key``
(mode 0600) the first time it is needed, so every worker of one home shares it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from mlpipe.connections.keyfile import create_key_file, read_key_file
from mlpipe.settings import Settings

COOKIE = "mlpipe_session"
MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def secret_key(settings: Settings) -> str:
    """``MLPIPE_WEBSERVER_SECRET_KEY``, else the key file in ``$MLPIPE_HOME`` (made once)."""
    if settings.webserver_secret_key:
        return settings.webserver_secret_key
    path = settings.webserver_secret_key_file
    return read_key_file(path) or create_key_file(path)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, its CSRF token, and the password fingerprint it was made with."""

    name: str
    csrf: str
    fingerprint: str


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class SessionCodec:
    """Makes and reads session cookie values."""

    def __init__(self, key: str) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self._serializer = URLSafeTimedSerializer(key, salt="mlpipe-session")

    def dumps(self, name: str, password_hash: str) -> tuple[str, Session]:
        session = Session(name, secrets.token_urlsafe(24), fingerprint(password_hash))
        value = self._serializer.dumps({"u": session.name, "c": session.csrf,
                                        "p": session.fingerprint})
        return str(value), session

    def loads(self, value: str) -> Session | None:
        """The session in a cookie value, or None if it is forged, malformed or expired."""
        from itsdangerous import BadSignature

        if len(value) > 4096:
            return None
        try:
            data: Any = self._serializer.loads(value, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str)
                                                 for k in ("u", "c", "p")):
            return None
        return Session(data["u"], data["c"], data["p"])


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
