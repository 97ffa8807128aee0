"""Artifact stores: read and atomically write artifacts by URI, with content hashes.

``open_store(uri)`` picks the backend by scheme: ``file://`` (``FileArtifactStore``),
``s3://`` (``S3ArtifactStore``, boto3), ``runs:/`` and ``models:/``
(``MlflowArtifactStore``, read-only). Importing this package loads neither boto3 nor
mlflow; the S3 and MLflow stores are imported on first use.

May import: mlpipe.core, mlpipe.errors, mlpipe.s3; boto3 and mlflow lazily, in their stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpipe.artifacts.base import ArtifactStat, ArtifactStore
from mlpipe.artifacts.file import FileArtifactStore
from mlpipe.artifacts.registry import (
    ArtifactStoreRegistry,
    known_schemes,
    open_store,
    register_store,
)
from mlpipe.core.artifact import Artifact, ArtifactKind, artifact_prefix, manifest_hash
from mlpipe.errors import ArtifactError, ArtifactNotFoundError, UnknownSchemeError

if TYPE_CHECKING:
    from mlpipe.artifacts.mlflow_store import MlflowArtifactStore
    from mlpipe.artifacts.s3 import S3ArtifactStore

__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactKind",
    "ArtifactNotFoundError",
    "ArtifactStat",
    "ArtifactStore",
    "ArtifactStoreRegistry",
    "FileArtifactStore",
    "MlflowArtifactStore",
    "S3ArtifactStore",
    "UnknownSchemeError",
    "artifact_prefix",
    "known_schemes",
    "manifest_hash",
    "open_store",
    "register_store",
]

def __getattr__(name: str) -> Any:
    """Import the heavy stores (boto3, mlflow) only when they are asked for."""
    if name == "S3ArtifactStore":
        from mlpipe.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore
    if name == "MlflowArtifactStore":
        from mlpipe.artifacts.mlflow_store import MlflowArtifactStore

        return MlflowArtifactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
