"""Artifact references: what tasks pass each other in XCom instead of the data itself.

An ``Artifact`` names bytes that live in an artifact store (``file://``, ``s3://``,
``runs:/``, ``models:/``) together with their kind, size and content hash. For a directory
the hash is a *manifest hash*: sha256 over the sorted lines ``"<relpath>\\0<sha256>\\n"``
(relpath in POSIX form, one line per file), so two trees with the same files hash alike
wherever they are stored.

Pure: no IO, no environment; the stores in ``mlpipe.artifacts`` do the reading.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlpipe.errors import InvalidArtifactError

__all__ = [
    "Artifact",
    "ArtifactKind",
    "InvalidArtifactError",
    "artifact_prefix",
    "manifest_hash",
]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class ArtifactKind(StrEnum):
    """What an artifact holds; lineage and the UI group artifacts by it."""

    DATASET = "dataset"
    MODEL = "model"
    METRICS = "metrics"
    FILE = "file"

    @classmethod
    def parse(cls, value: str) -> ArtifactKind:
        """The kind named ``value``; anything else raises ``InvalidArtifactError``."""
        try:
            return cls(value)
        except ValueError:
            valid = sorted(k.value for k in cls)
            raise InvalidArtifactError(
                f"unknown artifact kind {value!r}; valid: {valid}"
            ) from None


@dataclass(frozen=True)
class Artifact:
    """A reference to stored bytes: where they are, what they are, and their content hash.

    Attributes:
        uri: Where the artifact lives, e.g. ``s3://bucket/key`` or ``file:///abs/path``.
        kind: One of ``ArtifactKind`` (a plain string is converted).
        sha256: Hex sha256 of a file, or the manifest hash of a directory.
        size: Bytes (for a directory: the sum over its files).
        extra: JSON-serialisable details (ETag, version id, row counts...).
    """

    uri: str
    kind: ArtifactKind
    sha256: str
    size: int
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not _SCHEME.match(self.uri):
            raise InvalidArtifactError(
                f"artifact uri {self.uri!r} has no scheme; use e.g. 'file:///abs/path' "
                "or 's3://bucket/key'"
            )
        object.__setattr__(self, "kind", ArtifactKind.parse(self.kind))
        if not isinstance(self.sha256, str) or not _SHA256.match(self.sha256):
            raise InvalidArtifactError(
                f"artifact {self.uri!r} has sha256 {self.sha256!r}; expected 64 lowercase "
                "hex digits"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidArtifactError(
                f"artifact {self.uri!r} has size {self.size!r}; expected an int >= 0"
            )
        object.__setattr__(self, "extra", dict(self.extra or {}))

    def to_json(self) -> dict[str, Any]:
        """The reference as plain JSON types (``extra`` as given)."""
        return {
            "uri": self.uri,
            "kind": self.kind.value,
            "sha256": self.sha256,
            "size": self.size,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        """The reference ``to_json`` wrote; missing fields raise ``InvalidArtifactError``."""
        missing = sorted({"uri", "kind", "sha256", "size"} - set(data))
        if missing:
            raise InvalidArtifactError(
                f"artifact reference {dict(data)!r} lacks field(s) {missing}"
            )
        return cls(
            uri=data["uri"],
            kind=data["kind"],
            sha256=data["sha256"],
            size=data["size"],
            extra=data.get("extra") or {},
        )


def manifest_hash(entries: Iterable[tuple[str, str]]) -> str:
    """The manifest hash of a directory from ``(relpath, sha256)`` pairs, in any order.

    Args:
        entries: One pair per file; ``relpath`` uses ``/`` separators.

    Returns:
        Hex sha256 over the sorted lines ``"<relpath>\\0<sha256>\\n"``.
    """
    digest = hashlib.sha256()
    for relpath, sha in sorted(entries):
        digest.update(f"{relpath}\0{sha}\n".encode())
    return digest.hexdigest()


def artifact_prefix(
    root: str, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
) -> str:
    """Where a task instance writes its artifacts: ``<root>/<dag_id>/<run_id>/<task_id>/``.

    Args:
        root: The artifact root URI (``MLPIPE_ARTIFACT_ROOT``; the caller supplies the
            default ``file://$MLPIPE_HOME/artifacts``).
        dag_id: The DAG's id.
        run_id: The DAG run's id.
        task_id: The task's id (group-prefixed ids such as ``g.t`` are kept as they are).
        map_index: For a mapped task instance, its index becomes one more path level so
            instances never overwrite each other; ``-1`` (unmapped) adds nothing.

    Returns:
        The prefix URI, always ending with ``/``.
    """
    if not _SCHEME.match(root):
        raise InvalidArtifactError(
            f"artifact root {root!r} has no scheme; use e.g. 'file:///abs/path' or "
            "'s3://bucket/prefix'"
        )
    parts = [("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)]
    for name, value in parts:
        if not value or "/" in value or value in (".", ".."):
            raise InvalidArtifactError(
                f"{name} {value!r} cannot be an artifact path component; it must be "
                "non-empty, contain no '/', and not be '.' or '..'"
            )
    path = "/".join(value for _, value in parts)
    if map_index >= 0:
        path += f"/{map_index}"
    base = root if root.endswith("/") else root + "/"
    return f"{base}{path}/"
