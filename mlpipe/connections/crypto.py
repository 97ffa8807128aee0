"""Fernet encryption of stored secrets (``MLPIPE_FERNET_KEY``), as Airflow does it.

The key may be a comma-separated list: the first encrypts, every one decrypts (to rotate,
put the new key first). Without a configured key, the key file of ``MLPIPE_HOME`` is used,
generated on the first secret written (``keyfile``). ``cryptography`` is imported on first
use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpipe.connections.keyfile import create_key_file, read_key_file
from mlpipe.errors import DecryptionError, FernetKeyError


def generate_key() -> str:
    """A new random Fernet key (what to put in ``MLPIPE_FERNET_KEY``)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class FernetCipher:
    """Encrypts and decrypts text with ``MLPIPE_FERNET_KEY`` or the home's key file.

    With neither a key nor a key file it is a no-op cipher (``enabled`` is False).
    """

    def __init__(self, key: str | None, *, key_file: Path | None = None) -> None:
        self._keys = _split(key)
        self.key_file = None if self._keys else key_file
        self._fernet: Any = None

    @property
    def enabled(self) -> bool:
        """True if new secrets are stored encrypted (a key is set, or a key file is used)."""
        return bool(self._keys) or self.key_file is not None

    @property
    def primary_key(self) -> str | None:
        """The key new secrets are encrypted with, if one is known yet."""
        self._load(create=False)
        return self._keys[0] if self._keys else None

    def _load(self, *, create: bool) -> None:
        if self._keys or self.key_file is None:
            return
        key = create_key_file(self.key_file) if create else read_key_file(self.key_file)
        self._keys = _split(key)

    def rotate(self, token: str, *, kind: str, name: str) -> str:
        """``token`` re-encrypted with the first key (``MultiFernet.rotate``)."""
        from cryptography.fernet import InvalidToken

        self._load(create=False)
        try:
            return str(self._multi().rotate(token.encode()).decode())
        except InvalidToken:
            raise DecryptionError(kind, name, "none of the keys in MLPIPE_FERNET_KEY decrypts "
                                              "it; list the old key after the new one") from None

    def _multi(self) -> Any:
        if not self._keys:
            raise FernetKeyError("no Fernet key: set MLPIPE_FERNET_KEY")
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
        self._load(create=True)
        return str(self._multi().encrypt(text.encode()).decode())

    def decrypt(self, token: str, *, kind: str, name: str) -> str:
        """The text of a stored token; one clear error without a key or with the wrong one."""
        self._load(create=False)
        if not self._keys:
            where = f" and there is no key file {str(self.key_file)!r}" if self.key_file else ""
            raise DecryptionError(kind, name, f"MLPIPE_FERNET_KEY is not set{where}; set it to "
                                              "the key it was stored with")
        from cryptography.fernet import InvalidToken

        try:
            return str(self._multi().decrypt(token.encode()).decode())
        except InvalidToken:
            raise DecryptionError(kind, name, "the Fernet key does not decrypt it (the key "
                                              "changed: set MLPIPE_FERNET_KEY=new,old and run "
                                              "'mlpipe connections rotate-fernet-key')"
                                  ) from None


def _split(key: str | None) -> list[str]:
    return [k.strip() for k in (key or "").split(",") if k.strip()]
