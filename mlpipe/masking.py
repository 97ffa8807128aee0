"""The process-wide registry of secrets, and redacting text with it.

Reading a connection registers its password, its AWS secret and every extra whose name
looks sensitive; reading a variable with a sensitive name registers its value. Task logs
(``mlpipe.runtime.log_capture``) and CLI output pass text through ``redact`` so a
registered secret is shown as ``***``. The registry only grows for the life of the process:
a secret read once stays masked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
#: shorter values would mask ordinary words and numbers all over the log
MIN_SECRET_LENGTH = 3
_SENSITIVE = ("secret", "password", "token", "key")


def is_sensitive_name(name: str) -> bool:
    """True if a variable or extra called ``name`` holds a secret (secret/password/token/key)."""
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE)


class SecretsMasker:
    """A set of secret strings and the one regular expression that finds any of them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: Any) -> None:
        """Register ``secret`` and its URL-encoded forms; short or non-string values are not."""
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # longest first, so a secret containing another is masked whole
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def add_all(self, secrets: Iterable[Any]) -> None:
        for secret in secrets:
            self.add(secret)

    @property
    def active(self) -> bool:
        """True once a secret is registered."""
        return self._pattern is not None

    def holds_secret(self, text: str) -> bool:
        """True if ``text`` contains a registered secret."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def __contains__(self, secret: object) -> bool:
        return secret in self._secrets


_masker = SecretsMasker()


def secrets_masker() -> SecretsMasker:
    """The masker of this process."""
    return _masker


def mask_secret(secret: Any) -> None:
    """Register ``secret`` with this process's masker (Airflow's ``mask_secret``)."""
    _masker.add(secret)


def redact(text: str) -> str:
    """``text`` with this process's registered secrets replaced by ``***``."""
    return _masker.redact(text)


def string_leaves(value: Any) -> list[str]:
    """Every string inside a JSON value (a secret dict's members are secrets too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in string_leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in string_leaves(v)]
    return []
