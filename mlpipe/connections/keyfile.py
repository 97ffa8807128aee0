"""The Fernet key file: ``$MLPIPE_HOME/fernet.key``, made once (mode 0600) on first need.

Without ``MLPIPE_FERNET_KEY`` a secret is still never stored in clear: the first write of a
secret generates a key into this file, and every later process of the same home reads it.
Two processes racing to create it end up with one key (``O_EXCL``: the loser reads the
winner's). The home folder itself is made private (0700).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlpipe.errors import FernetKeyError

KEY_FILE_NAME = "fernet.key"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a folder this call creates is mode 0700."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path


def read_key_file(path: Path) -> str | None:
    """The key stored at ``path``, or None if there is no such file yet."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FernetKeyError(f"cannot read the Fernet key file {str(path)!r}: "
                             f"{exc.strerror}") from None
    if not text:  # another process is between creating and writing it
        return None
    return text


def create_key_file(path: Path) -> str:
    """The key at ``path``, generating it (0600, written once) if the file does not exist."""
    from cryptography.fernet import Fernet

    ensure_private_dir(path.parent)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _wait_for_key(path)
    try:
        os.write(fd, (key + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def _wait_for_key(path: Path, timeout: float = 2.0) -> str:
    """Another process created the file first: read its key once it is written."""
    deadline = time.monotonic() + timeout
    while True:
        key = read_key_file(path)
        if key is not None:
            return key
        if time.monotonic() > deadline:
            raise FernetKeyError(f"the Fernet key file {str(path)!r} is empty; delete it only "
                                 "if no secret was stored with it, or set MLPIPE_FERNET_KEY")
        time.sleep(0.01)
