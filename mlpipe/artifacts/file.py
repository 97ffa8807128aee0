"""``FileArtifactStore``: artifacts on the local (or a mounted) filesystem, ``file:///abs``.

Writes go to a hidden temp sibling and are renamed into place (see ``localfs``), so a
killed writer never leaves a partial artifact at the final path.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import unquote

from mlpipe.artifacts import localfs
from mlpipe.artifacts.base import ArtifactStat, ArtifactStore
from mlpipe.errors import ArtifactError, ArtifactNotFoundError

__all__ = ["FileArtifactStore"]

_T = TypeVar("_T")


def _child_uri(uri: str, rel: str) -> str:
    return uri.rstrip("/") + "/" + rel


class FileArtifactStore(ArtifactStore):
    """Artifacts under ``file:///absolute/path`` URIs (``file://localhost/...`` too).

    URIs with ``.``/``..`` segments (``%2e%2e`` included) are refused; with ``root``, so
    is every path outside it (absolute paths elsewhere, symlinks that lead out).
    """

    schemes = ("file",)

    def __init__(self, root: str | Path | None = None) -> None:
        if root is not None and str(root).startswith("file://"):
            root = self.path_of(str(root))
        self.root = Path(root) if root is not None else None

    def path_of(self, uri: str) -> Path:
        """The local path a ``file://`` URI names (percent-escapes decoded), checked."""
        rest = uri[len("file://"):] if uri.startswith("file://") else None
        if rest is not None and rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if rest is None or not rest.startswith("/"):
            raise ArtifactError(
                f"{uri!r} is not an absolute file URI; write 'file:///abs/path' "
                "(three slashes)",
                uri=uri,
            )
        path = unquote(rest)
        reason = localfs.escape_reason(path, getattr(self, "root", None))
        if reason is not None:
            raise ArtifactError(f"artifact path {uri!r} is refused: {reason}", uri=uri)
        return Path(path)

    def open(self, uri: str) -> BinaryIO:
        """Open the file at ``uri`` for reading."""
        path = self.path_of(uri)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFoundError(uri) from None
        except IsADirectoryError:
            raise ArtifactError(
                f"{uri!r} is a directory; use get_dir() or list()", uri=uri
            ) from None

    def write_bytes(self, uri: str, data: bytes) -> ArtifactStat:
        """Write ``data`` to a temp sibling and rename it over ``uri``."""
        size, sha = _guard(uri, lambda: localfs.write_chunks_atomic(
            self.path_of(uri), [data]))
        return ArtifactStat(size=size, sha256=sha)

    def put_file(self, local_path: str | Path, uri: str) -> ArtifactStat:
        """Copy ``local_path`` to a temp sibling of ``uri`` and rename it into place."""
        source = Path(local_path)
        if not source.is_file() and not source.is_fifo():
            raise ArtifactError(f"cannot upload {str(source)!r} to {uri!r}: not a file",
                                uri=uri)
        size, sha = _guard(uri, lambda: localfs.copy_file_atomic(
            source, self.path_of(uri)))
        return ArtifactStat(size=size, sha256=sha)

    def get_file(self, uri: str, local_path: str | Path) -> Path:
        """Copy the file at ``uri`` to ``local_path`` atomically."""
        source = self.path_of(uri)
        if source.is_dir():
            raise ArtifactError(f"{uri!r} is a directory; use get_dir()", uri=uri)
        if not source.exists():
            raise ArtifactNotFoundError(uri)
        dest = Path(local_path)
        _guard(uri, lambda: localfs.copy_file_atomic(source, dest), verb="download")
        return dest

    def put_dir(self, local_dir: str | Path, uri: str) -> ArtifactStat:
        """Copy the tree to a temp sibling of ``uri`` and rename it into place."""
        source = Path(local_dir)
        if not source.is_dir():
            raise ArtifactError(
                f"cannot upload {str(source)!r} to {uri!r}: not a directory", uri=uri
            )
        entries = _guard(uri, lambda: localfs.copy_tree_atomic(source, self.path_of(uri)))
        return localfs.tree_stat(entries)

    def get_dir(self, uri: str, local_dir: str | Path) -> Path:
        """Copy the directory at ``uri`` to ``local_dir`` (replaced whole)."""
        source = self.path_of(uri)
        if not source.is_dir():
            raise ArtifactNotFoundError(uri, "no directory there")
        dest = Path(local_dir)
        _guard(uri, lambda: localfs.copy_tree_atomic(source, dest), verb="download")
        return dest

    def exists(self, uri: str) -> bool:
        """True if a file or directory is at ``uri`` (temp siblings never count)."""
        path = self.path_of(uri)
        return path.exists() and not localfs.is_temp_name(path.name)

    def list(self, uri: str, *, recursive: bool = False) -> builtins.list[str]:
        """The children (or, recursively, the files) under the directory ``uri``."""
        root = self.path_of(uri)
        if not root.is_dir():
            return []
        if recursive:
            return sorted(_child_uri(uri, rel) for rel in localfs.walk_files(root))
        children = []
        with os.scandir(root) as entries:
            for entry in entries:
                if localfs.is_temp_name(entry.name):
                    continue
                suffix = "/" if entry.is_dir() else ""
                children.append(_child_uri(uri, entry.name) + suffix)
        return sorted(children)

    def stat(self, uri: str) -> ArtifactStat:
        """Size and sha256 of the file, or total size and manifest hash of the directory."""
        path = self.path_of(uri)
        if path.is_dir():
            return localfs.tree_stat(localfs.tree_entries(path))
        try:
            with open(path, "rb") as stream:
                size, sha = localfs.hash_stream(stream)
        except FileNotFoundError:
            raise ArtifactNotFoundError(uri) from None
        return ArtifactStat(size=size, sha256=sha)



def _guard(uri: str, action: Callable[[], _T], *, verb: str = "write") -> _T:
    """Run ``action``, turning an ``OSError`` into an ``ArtifactError`` naming ``uri``."""
    try:
        return action()
    except OSError as exc:
        raise ArtifactError(f"cannot {verb} {uri!r}: {exc}", uri=uri) from exc
