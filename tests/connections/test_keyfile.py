"""The home's Fernet key file: made once, private, the same key for racing processes."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from mlpipe.connections.keyfile import create_key_file, ensure_private_dir, read_key_file
from mlpipe.errors import FernetKeyError


def _create(path: str) -> str:
    return create_key_file(Path(path))


def test_processes_racing_to_create_the_key_file_all_get_one_key(tmp_path: Path) -> None:
    path = tmp_path / "home" / "fernet.key"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_create, [str(path)] * 8)

    assert len(set(keys)) == 1
    assert read_key_file(path) == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)

    ensure_private_dir(folder)

    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_an_empty_key_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fernet.key"
    path.touch()

    with pytest.raises(FernetKeyError, match=r"the Fernet key file .*fernet.key' is empty"):
        create_key_file(path)
