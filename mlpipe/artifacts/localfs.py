"""Atomic writes and content hashes on the local filesystem.

A file is written to a hidden temp sibling (``.<name>.mlpipe-tmp-<random>``), fsynced and
renamed over the destination; a directory is built the same way as a temp sibling tree and
renamed into place. A killed writer leaves at most a hidden temp sibling, which listings
skip, never a partial file at the final path. Every backend uses these for its local side
(downloads), and ``FileArtifactStore`` for everything.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from mlpipe.artifacts.base import ArtifactStat
from mlpipe.core.artifact import manifest_hash

__all__ = [
    "CHUNK_SIZE",
    "TEMP_TAG",
    "TreeEntry",
    "copy_file_atomic",
    "copy_tree_atomic",
    "escape_reason",
    "hash_stream",
    "is_temp_name",
    "replace_path",
    "temp_sibling",
    "tree_entries",
    "tree_stat",
    "walk_files",
    "write_chunks_atomic",
]

CHUNK_SIZE = 1024 * 1024
TEMP_TAG = ".mlpipe-tmp-"
_REPLACE_ATTEMPTS = 5

#: ``(relpath, size, sha256)`` of one file in a tree; relpath uses ``/``.
TreeEntry = tuple[str, int, str]


def escape_reason(path: str, root: Path | None = None) -> str | None:
    """Why the (decoded) absolute ``path`` may leave its place, or None if it cannot.

    ``.`` and ``..`` segments and NUL bytes are refused everywhere; with a ``root``, the
    path with its symlinks resolved must also lie inside the resolved root.
    """
    if "\0" in path:
        return "it contains a NUL byte"
    if any(part in (".", "..") for part in path.split("/")):
        return "it has a '.' or '..' path segment"
    if root is not None:
        real_root = root.resolve()
        if not Path(path).resolve().is_relative_to(real_root):
            return f"it is outside the store's root {str(real_root)!r}"
    return None


def is_temp_name(name: str) -> bool:
    """True for the hidden temp names atomic writes use (never part of an artifact)."""
    return TEMP_TAG in name


def temp_sibling(dest: Path) -> Path:
    """A fresh hidden path next to ``dest`` (same filesystem, so rename is atomic)."""
    return dest.parent / f".{dest.name}{TEMP_TAG}{uuid.uuid4().hex[:12]}"


def hash_stream(stream: BinaryIO) -> tuple[int, str]:
    """``(size, sha256)`` of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _write_chunks(path: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "xb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _chunks_of(path: Path) -> Iterator[bytes]:
    # Reads a FIFO or a regular file alike, so a stream can be copied while it is written.
    with open(path, "rb") as source:
        yield from iter(lambda: source.read(CHUNK_SIZE), b"")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_path(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` (file or directory) to ``dest``, replacing whatever is there.

    A file replaces a file in one ``rename``. A directory (or a type change) first moves
    the old entry aside to a hidden temp name, so ``dest`` is at every moment either the
    old artifact, absent, or the new one, never a mix.
    """
    if not tmp.is_dir() and not (dest.is_dir() and not dest.is_symlink()):
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        return
    for _ in range(_REPLACE_ATTEMPTS):
        old = temp_sibling(dest)
        with contextlib.suppress(FileNotFoundError):
            os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            # Another writer put something at dest between the two renames: go again.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            continue
        finally:
            _discard(old)  # a no-op when dest was absent
        _fsync_dir(dest.parent)
        return
    raise OSError(errno.EBUSY, f"{dest} kept changing while it was being replaced")


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_chunks_atomic(dest: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write ``chunks`` to ``dest`` atomically; return ``(size, sha256)``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dest)
    try:
        result = _write_chunks(tmp, chunks)
        replace_path(tmp, dest)
    except BaseException:
        _discard(tmp)
        raise
    return result


def copy_file_atomic(src: Path, dest: Path) -> tuple[int, str]:
    """Copy the file ``src`` to ``dest`` atomically, hashing on the way."""
    return write_chunks_atomic(dest, _chunks_of(src))


def walk_files(root: Path) -> Iterator[str]:
    """Relative POSIX paths of the files under ``root``, sorted, skipping temp names."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_temp_name(d))
        base = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if not is_temp_name(name):
                yield (base / name).as_posix()


def copy_tree_atomic(src: Path, dest: Path) -> list[TreeEntry]:
    """Copy the tree ``src`` to ``dest`` via a temp sibling renamed into place.

    Returns the entries (relpath, size, sha256) of the copied files, sorted by relpath.
    """
    if not src.is_dir():
        raise NotADirectoryError(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dest)
    entries: list[TreeEntry] = []
    try:
        tmp.mkdir()
        for rel in walk_files(src):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            size, sha = _write_chunks(target, _chunks_of(src / rel))
            entries.append((rel, size, sha))
        replace_path(tmp, dest)
    except BaseException:
        _discard(tmp)
        raise
    return entries


def tree_entries(root: Path) -> list[TreeEntry]:
    """``(relpath, size, sha256)`` for every file under ``root``, sorted by relpath."""
    entries: list[TreeEntry] = []
    for rel in walk_files(root):
        with open(root / rel, "rb") as stream:
            size, sha = hash_stream(stream)
        entries.append((rel, size, sha))
    return entries


def tree_stat(entries: Iterable[TreeEntry]) -> ArtifactStat:
    """Total size and manifest hash of a directory from its entries."""
    items = list(entries)
    return ArtifactStat(
        size=sum(size for _, size, _ in items),
        sha256=manifest_hash((rel, sha) for rel, _, sha in items),
    )
