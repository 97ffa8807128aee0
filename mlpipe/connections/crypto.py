"""Fernet encryption of stored secrets (``MLPIPE_FERNET_KEY``), as Airflow does it.

The key may be a comma-separated list: the first encrypts, every one decrypts (to rotate,
put the new key first). ``cryptography`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

from mlpipe.connections.errors import DecryptionError, FernetKeyError


def generate_key() -> str:
    """A new random Fernet key (what to put in ``MLPIPE_FERNET_KEY``)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class FernetCipher:
    """Encrypts and decrypts text with ``MLPIPE_FERNET_KEY``; a no-op cipher without a key."""

    def __init__(self, key: str | None) -> None:
        self._keys = [k.strip() for k in (key or "").split(",") if k.strip()]
        self._fernet: Any = None

    @property
    def enabled(self) -> bool:
        """True if a key is set: new secrets are stored encrypted."""
        return bool(self._keys)

    def _multi(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet

            try:
                self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])
            except ValueError:
                raise FernetKeyError(
                    "MLPIPE_FERNET_KEY is not a valid Fernet key (32 url-safe base64-encoded "
                    "bytes); generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'"
                ) from None
        return self._fernet

    def encrypt(self, text: str) -> str:
        """The Fernet token of ``text`` (requires a key)."""
        if not self.enabled:
            raise FernetKeyError("MLPIPE_FERNET_KEY is not set; nothing to encrypt with")
        return str(self._multi().encrypt(text.encode()).decode())

    def decrypt(self, token: str, *, kind: str, name: str) -> str:
        """The text of a stored token; one clear error without a key or with the wrong one."""
        if not self.enabled:
            raise DecryptionError(kind, name, "MLPIPE_FERNET_KEY is not set; set it to the key "
                                              "it was stored with")
        from cryptography.fernet import InvalidToken

        try:
            return str(self._multi().decrypt(token.encode()).decode())
        except InvalidToken:
            raise DecryptionError(kind, name, "MLPIPE_FERNET_KEY does not decrypt it (wrong "
                                              "key, or the row was changed)") from None
