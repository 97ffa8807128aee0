"""Operator arguments that may be an ``Artifact`` (an upstream's output) or a plain URI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlpipe.core.artifact import Artifact
from mlpipe.errors import TaskError


def uri_of(value: Any) -> str:
    """The URI of an ``Artifact`` argument, or the argument itself as a string."""
    return value.uri if isinstance(value, Artifact) else str(value)


def local_path(value: Any) -> Path:
    """The local path of a ``file://`` argument (a data set, a task's artifact prefix).

    Raises:
        TaskError: the argument is not a ``file://`` URI.
    """
    from mlpipe.artifacts import FileArtifactStore
    from mlpipe.errors import ArtifactError

    uri = uri_of(value)
    try:
        return FileArtifactStore().path_of(uri)
    except ArtifactError:
        raise TaskError(f"expected a local file:// URI, got {uri!r}") from None
