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
#: the login form's CSRF cookie (a random nonce; the form carries its HMAC)
LOGIN_COOKIE = "mlpipe_login"
LOGIN_MAX_AGE_S = 3600


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
        self._login_key = hashlib.sha256(b"mlpipe-login-csrf:" + key.encode()).digest()

    def dumps(self, name: str, password_hash: str) -> tuple[str, Session]:
        session = Session(name, secrets.token_urlsafe(24), fingerprint(password_hash))
        value = self._serializer.dumps({"u": session.name, "c": session.csrf,
                                        "p": session.fingerprint})
        return str(value), session

    def login_token(self, nonce: str) -> str:
        """The login form's CSRF token for the login cookie ``nonce`` (an HMAC of it with
        the server's key: a page on another site can neither read nor make it)."""
        return hmac.new(self._login_key, nonce.encode(), hashlib.sha256).hexdigest()

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


def new_login_nonce() -> str:
    """The value of a fresh login CSRF cookie."""
    return secrets.token_urlsafe(24)


def valid_login_nonce(value: str | None) -> bool:
    return bool(value) and 16 <= len(str(value)) <= 64 and \
        all(c.isalnum() or c in "-_" for c in str(value))


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
