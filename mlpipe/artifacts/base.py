"""The ``ArtifactStore`` interface every backend implements, and ``ArtifactStat``.

A store serves every URI of its scheme(s). Files and directories are both artifacts: a
directory is stored as the files under a prefix, and its content hash is the manifest hash
of ``mlpipe.core.artifact``. Writes are atomic: readers see the old artifact or the whole
new one, never a part.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from mlpipe.core.artifact import Artifact, ArtifactKind
from mlpipe.errors import ArtifactError

__all__ = ["ArtifactStat", "ArtifactStore"]


@dataclass(frozen=True)
class ArtifactStat:
    """Size and content hash of a file, or of a directory (sum of sizes, manifest hash).

    ``etag`` and ``version_id`` are set for S3 objects (``version_id`` only in a
    versioned bucket); they are None for directories and other backends.
    """

    size: int
    sha256: str
    etag: str | None = None
    version_id: str | None = None


class ArtifactStore(ABC):
    """Read and atomically write artifacts addressed by URI.

    Directory-valued methods (``put_dir``, ``get_dir``, ``list``) treat the URI as a
    directory whether or not it ends with ``/``.
    """

    #: Schemes this store serves by default (the registry maps them to it).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: True for stores that can only read (e.g. MLflow's ``runs:/`` and ``models:/``).
    read_only: ClassVar[bool] = False

    @abstractmethod
    def open(self, uri: str) -> BinaryIO:
        """Open the file artifact at ``uri`` for reading (binary); the caller closes it."""

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of the file artifact at ``uri``."""
        with self.open(uri) as stream:
            return stream.read()

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> ArtifactStat:
        """Atomically create or replace the file artifact at ``uri`` with ``data``."""

    @abstractmethod
    def put_file(self, local_path: str | Path, uri: str) -> ArtifactStat:
        """Atomically upload the local file ``local_path`` to ``uri``."""

    @abstractmethod
    def get_file(self, uri: str, local_path: str | Path) -> Path:
        """Download the file artifact at ``uri`` to ``local_path`` (atomically); return it."""

    @abstractmethod
    def put_dir(self, local_dir: str | Path, uri: str) -> ArtifactStat:
        """Upload the tree ``local_dir`` to the directory ``uri``, replacing what was there.

        Returns the tree's size and manifest hash.
        """

    @abstractmethod
    def get_dir(self, uri: str, local_dir: str | Path) -> Path:
        """Download the directory ``uri`` to ``local_dir`` (replaced whole); return it."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """True if a complete file or directory artifact is at ``uri``."""

    @abstractmethod
    def list(self, uri: str, *, recursive: bool = False) -> builtins.list[str]:
        """URIs under the directory ``uri``, sorted; ``[]`` if there is none.

        Not recursive: the direct children, subdirectories ending with ``/``. Recursive:
        every file below, at any depth.
        """

    @abstractmethod
    def stat(self, uri: str) -> ArtifactStat:
        """Size and sha256 of a file, or total size and manifest hash of a directory."""

    def describe(
        self, uri: str, kind: ArtifactKind | str, *, extra: Mapping[str, Any] | None = None
    ) -> Artifact:
        """An ``Artifact`` reference to ``uri``, hashed now (ETag/version go into extra)."""
        info = self.stat(uri)
        details = dict(extra or {})
        if info.etag is not None:
            details.setdefault("etag", info.etag)
        if info.version_id is not None:
            details.setdefault("version_id", info.version_id)
        return Artifact(uri=uri, kind=ArtifactKind.parse(kind), sha256=info.sha256,
                        size=info.size, extra=details)

    def _refuse_write(self, uri: str) -> ArtifactError:
        """The error a read-only store raises for a write to ``uri``."""
        return ArtifactError(
            f"cannot write {uri!r}: {type(self).__name__} is read-only; write to a file:// or "
            "s3:// URI (log to MLflow through mlpipe.tracking)",
            uri=uri,
        )
