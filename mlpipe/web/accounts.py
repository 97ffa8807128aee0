"""Managing users and checking credentials against the metadata store.

What ``mlpipe users ...`` and the web server's auth share. Successful password checks are
remembered for a minute (keyed by an HMAC of name and password, tied to the stored hash), so
an API client sending HTTP Basic on every request does not pay argon2 on every request;
changing the password or deleting the user ends that at once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from mlpipe.errors import UserError
from mlpipe.store.entities import UserRecord
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.web.passwords import (
    check_name,
    hash_password,
    new_token,
    role_rank,
    token_digest,
    verify_password,
)

CACHE_S = 60.0
CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class User:
    """Who made a request: name, role and how they proved it (basic, bearer or session)."""

    name: str
    role: str
    via: str = "session"

    def can(self, role: str) -> bool:
        """True if this user's role is ``role`` or stronger."""
        return role_rank(self.role) >= role_rank(role)


def create_user(store: MetadataStore, name: str, role: str, password: str) -> UserRecord:
    """Create a user with a hashed password; ``UserError`` for a bad name, role or password."""
    check_name(name)
    role_rank(role)
    return store.create_user(name, role, hash_password(password))


def delete_user(store: MetadataStore, name: str) -> None:
    if not store.delete_user(name):
        raise UserError(f"no user {name!r}; known: {[u.name for u in store.list_users()]}",
                        name=name)


def issue_token(store: MetadataStore, name: str) -> str:
    """A new API token for ``name`` (stored as its digest; the token itself is returned once)."""
    if store.get_user(name) is None:
        raise UserError(f"no user {name!r}; known: {[u.name for u in store.list_users()]}",
                        name=name)
    token = new_token()
    store.add_token(name, token_digest(token))
    return token


class PasswordChecker:
    """Checks name and password against the store, remembering recent successes."""

    def __init__(self, store: MetadataStore, secret: bytes) -> None:
        self.store = store
        self._secret = secret
        self._ok: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def check(self, name: str, password: str) -> UserRecord | None:
        """The user if the password is right, else None."""
        record = self.store.get_user(name)
        if record is None:
            # as slow as a wrong password, so the timing tells no one which names exist
            verify_password(_DUMMY_HASH(), password)
            return None
        key = hmac.new(self._secret, f"{name}\0{password}".encode("utf-8", "surrogatepass"),
                       hashlib.sha256).digest()
        with self._lock:
            cached = self._ok.get(key)
        if cached and cached[0] == record.password_hash and cached[1] > time.monotonic():
            return record
        if not verify_password(record.password_hash, password):
            return None
        with self._lock:
            if len(self._ok) >= CACHE_SIZE:
                self._ok.clear()
            self._ok[key] = (record.password_hash, time.monotonic() + CACHE_S)
        return record

    def user_of_token(self, token: str) -> UserRecord | None:
        if len(token) > 200:
            return None
        return self.store.user_of_token(token_digest(token))


_dummy: list[str] = []


def _DUMMY_HASH() -> str:
    if not _dummy:
        _dummy.append(hash_password("not-a-password-of-anyone"))
    return _dummy[0]
