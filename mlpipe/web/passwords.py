"""Roles, user names, argon2 password hashes and API tokens (no web framework here).

Passwords are hashed with argon2id (``argon2-cffi``'s defaults); API tokens are 256 random
bits shown once and stored only as their SHA-256 digest, which is enough for a random
secret and lets a request find its user with one indexed look-up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import cache
from typing import Any

from mlpipe.errors import UserError

#: roles, weakest first: each may do what the ones before it may
ROLES = ("viewer", "op", "admin")
TOKEN_PREFIX = "mlp_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
#: argon2 hashes whatever it is given: a bound keeps a hostile request cheap
MAX_PASSWORD = 1024


def role_rank(role: str) -> int:
    """0 for viewer, 1 for op, 2 for admin; ``UserError`` for anything else."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; valid: {sorted(ROLES)}") from None


def check_name(name: str) -> str:
    """A user name: 1-64 letters, digits, ``_ . @ -``, starting with a letter or digit."""
    if not _NAME.match(name):
        raise UserError(f"user name {name[:80]!r} is not valid: use 1-64 letters, digits, "
                        "'_', '.', '@' or '-', starting with a letter or digit", name=name)
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters, "
                        f"got {len(password)}")
    return password


@cache
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (checked for length first)."""
    return str(_hasher().hash(check_password(password)))


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; never raises for a wrong password."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    if len(password) > MAX_PASSWORD:
        return False
    try:
        return bool(_hasher().verify(password_hash, password))
    except (Argon2Error, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh API token (``mlp_`` and 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def generate_password() -> str:
    """A password for a generated account (``mlpipe standalone``'s admin)."""
    return secrets.token_urlsafe(15)
