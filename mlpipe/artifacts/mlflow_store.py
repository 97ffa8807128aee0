"""``MlflowArtifactStore``: read MLflow run and model artifacts, ``runs:/`` and ``models:/``.

Read-only: artifacts get into MLflow by logging them (``mlpipe.tracking``). URIs:

- ``runs:/<run_id>/<path>`` (``runs:/<run_id>/`` is the run's artifact root);
- ``models:/<name>/<version>[/<path>]``, ``models:/<name>@<alias>[/<path>]``;
- ``models:/<model_id>`` (an MLflow 3 logged model, ``m-...``).

``models:/`` URIs are resolved here with an ``MlflowClient`` bound to the given tracking
and registry URIs (MLflow's own resolver reads the process-wide registry URI instead), then
read with ``mlflow.artifacts``. Reads download to a temp directory.
"""

from __future__ import annotations

import builtins
import io
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException

from mlpipe.artifacts import localfs
from mlpipe.artifacts.base import ArtifactStat, ArtifactStore
from mlpipe.errors import ArtifactError, ArtifactNotFoundError

__all__ = ["MlflowArtifactStore"]

_T = TypeVar("_T")
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_REGISTRY_FILES = frozenset({"registered_model_meta"})


@dataclass(frozen=True)
class _Location:
    """An artifact as (repository root URI ending in ``/``, path under it)."""

    root: str
    path: str

    @property
    def uri(self) -> str:
        return self.root + self.path


class MlflowArtifactStore(ArtifactStore):
    """Reads ``runs:/`` and ``models:/`` artifacts through MLflow's own APIs.

    Args:
        tracking_uri: MLflow tracking URI; None uses MLflow's default.
        registry_uri: Model registry URI; None uses the tracking URI.
    """

    schemes = ("runs", "models")
    read_only = True

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)

    def open(self, uri: str) -> BinaryIO:
        """The file's bytes, downloaded into memory."""
        with tempfile.TemporaryDirectory(prefix="mlpipe-mlflow-") as tmp:
            local = self._download(uri, Path(tmp))
            if local.is_dir():
                raise ArtifactError(f"{uri!r} is a directory; use get_dir()", uri=uri)
            return io.BytesIO(local.read_bytes())

    def write_bytes(self, uri: str, data: bytes) -> ArtifactStat:
        """Refused: MLflow artifacts are logged, not written."""
        raise self._refuse_write(uri)

    def put_file(self, local_path: str | Path, uri: str) -> ArtifactStat:
        """Refused: MLflow artifacts are logged, not written."""
        raise self._refuse_write(uri)

    def put_dir(self, local_dir: str | Path, uri: str) -> ArtifactStat:
        """Refused: MLflow artifacts are logged, not written."""
        raise self._refuse_write(uri)

    def get_file(self, uri: str, local_path: str | Path) -> Path:
        """Download the file artifact to ``local_path`` atomically."""
        dest = Path(local_path)
        with tempfile.TemporaryDirectory(prefix="mlpipe-mlflow-") as tmp:
            local = self._download(uri, Path(tmp))
            if local.is_dir():
                raise ArtifactError(f"{uri!r} is a directory; use get_dir()", uri=uri)
            localfs.copy_file_atomic(local, dest)
        return dest

    def get_dir(self, uri: str, local_dir: str | Path) -> Path:
        """Download the directory artifact into ``local_dir`` (replaced whole)."""
        dest = Path(local_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = localfs.temp_sibling(dest)
        staging.mkdir()
        try:
            local = self._download(uri, staging)
            if not local.is_dir():
                raise ArtifactError(f"{uri!r} is a file; use get_file()", uri=uri)
            localfs.replace_path(local, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest

    def download_into(self, uri: str, folder: str | Path) -> Path:
        """Download the artifact (a file or a directory) into ``folder``; its local path."""
        return self._download(uri, Path(folder))

    def exists(self, uri: str) -> bool:
        """True if the run or model version exists and has an artifact at the path."""
        try:
            location = self._resolve(uri)
            if not location.path.strip("/"):
                self._entries(location)  # the run / model exists if its root lists
                return True
            parent, name = posixpath.split(location.path.rstrip("/"))
            entries = self._entries(_Location(location.root, parent))
        except ArtifactNotFoundError:
            return False
        return any(posixpath.basename(e.path) == name for e in entries)

    def list(self, uri: str, *, recursive: bool = False) -> builtins.list[str]:
        """Children (subdirectories ending ``/``) or, recursively, files under ``uri``."""
        try:
            return sorted(self._walk(uri, recursive=recursive))
        except ArtifactNotFoundError:
            return []

    def stat(self, uri: str) -> ArtifactStat:
        """Size and sha256 (or manifest hash) of the downloaded artifact.

        A model directory's hash leaves out the file the registry adds on registration.
        """
        with tempfile.TemporaryDirectory(prefix="mlpipe-mlflow-") as tmp:
            local = self._download(uri, Path(tmp))
            if local.is_dir():
                # MLflow adds registered_model_meta to a model when it is registered: that
                # is registry bookkeeping, not model content, so it is not hashed.
                return localfs.tree_stat(e for e in localfs.tree_entries(local)
                                         if e[0] not in _REGISTRY_FILES)
            with open(local, "rb") as stream:
                size, sha = localfs.hash_stream(stream)
        return ArtifactStat(size=size, sha256=sha)

    # -- helpers -----------------------------------------------------------------------

    def _resolve(self, uri: str) -> _Location:
        if uri.startswith("runs:/"):
            run_id, _, path = uri[len("runs:/"):].lstrip("/").partition("/")
            if not run_id:
                raise ArtifactError(f"{uri!r} names no run; write 'runs:/<run_id>/<path>'",
                                    uri=uri)
            return _Location(f"runs:/{run_id}/", path.strip("/"))
        if uri.startswith("models:/"):
            return self._resolve_model(uri)
        raise ArtifactError(f"{uri!r} is not a runs:/ or models:/ URI", uri=uri)

    def _resolve_model(self, uri: str) -> _Location:
        spec = uri[len("models:/"):].strip("/")
        head, _, rest = spec.partition("/")
        if "@" in head:
            name, _, alias = head.partition("@")
            version = self._mlflow(uri, lambda: self.client.get_model_version_by_alias(
                name, alias).version)
            path = rest
        elif rest:
            name, _, path = spec.partition("/")
            version, _, path = path.partition("/")
        elif head.startswith("m-"):
            root = self._mlflow(uri, lambda: self.client.get_logged_model(head)
                                .artifact_location)
            return _Location(root.rstrip("/") + "/", "")
        else:
            raise ArtifactError(
                f"{uri!r} is not a model URI; write 'models:/<name>/<version>' or "
                "'models:/<name>@<alias>'",
                uri=uri,
            )
        root = self._mlflow(uri, lambda: self.client.get_model_version_download_uri(
            name, str(version)))
        return _Location(root.rstrip("/") + "/", path.strip("/"))

    def _walk(self, uri: str, *, recursive: bool) -> Iterator[str]:
        base = uri.rstrip("/") + "/"
        pending = [("", self._resolve(uri))]
        while pending:
            rel, here = pending.pop()
            for entry in self._entries(here):
                name = posixpath.basename(entry.path.rstrip("/"))
                if entry.is_dir and recursive:
                    sub_path = posixpath.join(here.path, name) if here.path else name
                    pending.append((f"{rel}{name}/", _Location(here.root, sub_path)))
                else:
                    yield base + rel + name + ("/" if entry.is_dir else "")

    def _entries(self, location: _Location) -> builtins.list[FileInfo]:
        return self._mlflow(location.uri, lambda: mlflow.artifacts.list_artifacts(
            artifact_uri=location.uri, tracking_uri=self.tracking_uri))

    def _download(self, uri: str, dest: Path) -> Path:
        location = self._resolve(uri)
        try:
            local = self._mlflow(uri, lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=location.uri, dst_path=str(dest), tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri))
        except ArtifactError:
            # MLflow reports a missing path as a generic failure: tell the two apart.
            if not self.exists(uri):
                raise ArtifactNotFoundError(uri) from None
            raise
        return Path(local)

    def _mlflow(self, uri: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except MlflowException as exc:
            detail = " ".join(str(exc.message).split())
            if exc.error_code in _MISSING_CODES:
                raise ArtifactNotFoundError(uri, detail) from None
            raise ArtifactError(f"MLflow could not read {uri!r}: {detail}", uri=uri) from None
