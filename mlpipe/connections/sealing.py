"""Secrets inside XCom values: sealed (Fernet) when pushed, unsealed and masked when pulled.

A try that read a connection has its secrets in its process's masker. When it pushes an
XCom, every string holding one of them is stored as a Fernet token tagged
``{"__mlpipe_type__": "secret", ...}`` instead: the metadata database never holds it in
clear. Whichever process pulls the value later (another executor child, a Celery worker
elsewhere, the CLI) gets the plain string back and registers it with its own masker first,
so its logs and output show ``***`` the same under every executor.

Nothing is walked while the masker is empty, and pulled text is only walked if it holds a
sealed value: XComs without secrets cost nothing extra.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mlpipe.connections.crypto import FernetCipher
from mlpipe.masking import mask_secret, secrets_masker

_TAG = "__mlpipe_type__"  # the tag of ``mlpipe.core.serde``'s typed values
_KIND = "secret"
#: how a sealed value starts in serialised XCom text (serde writes compact JSON)
SEALED_MARK = f'"{_TAG}":"{_KIND}"'


def seal_secrets(value: Any) -> Any:
    """``value`` with each string that holds a registered secret replaced by its sealed form."""
    masker = secrets_masker()
    if not masker.active:
        return value
    return _seal(value, masker.holds_secret)


def _seal(value: Any, holds: Any) -> Any:
    if isinstance(value, str):
        return {_TAG: _KIND, "value": _cipher().encrypt(value)} if holds(value) else value
    if isinstance(value, dict):
        return {k: _seal(v, holds) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_seal(v, holds) for v in value]
    return value


def unseal_secrets(value: Any) -> Any:
    """``value`` with sealed strings decrypted, each registered with this process's masker."""
    if isinstance(value, dict):
        if value.get(_TAG) == _KIND:
            plain = _cipher().decrypt(value["value"], kind="XCom value", name="(sealed)")
            mask_secret(plain)
            return plain
        return {k: unseal_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unseal_secrets(v) for v in value]
    return value


def _cipher() -> FernetCipher:
    from mlpipe.settings import load_settings

    settings = load_settings()
    return _cipher_for(settings.fernet_key, settings.fernet_key_file)


@functools.lru_cache(maxsize=4)
def _cipher_for(key: str | None, key_file: Path) -> FernetCipher:
    return FernetCipher(key, key_file=key_file)
