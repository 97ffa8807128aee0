"""``S3UploadOperator``: a local file or folder, or an MLflow model, uploaded to S3.

``runs:/`` and ``models:/`` sources are downloaded with MLflow's own API (through
``MlflowArtifactStore``) into a temporary folder, which is then uploaded like any folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlpipe.artifacts import Artifact, ArtifactKind, open_store
from mlpipe.core.operator import BaseOperator, Context
from mlpipe.errors import ArtifactError
from mlpipe.masking import redact
from mlpipe.operators.artifact_args import uri_of
from mlpipe.operators.s3 import S3OperatorError, dir_prefix, split_s3, store_options
from mlpipe.s3.errors import is_boto_error

__all__ = ["S3UploadOperator"]

log = logging.getLogger("mlpipe.task")

MLFLOW_SCHEMES = ("runs:/", "models:/")


class S3UploadOperator(BaseOperator):
    """Upload a file, a folder or an MLflow model to S3; returns the destination ``Artifact``.

    Args:
        task_id: The task's id.
        source_uri: An ``Artifact`` (e.g. another task's ``.output``), a ``file://`` URI, a
            local path, or a model: ``models:/name/version``, ``models:/name@alias``,
            ``runs:/<run_id>/path`` (templated).
        dest: ``s3://bucket/prefix/`` (templated). A folder (a model is one) is uploaded
            under it, replacing what was there; a file goes to ``dest`` + its name when
            ``dest`` ends with ``/``, else to the key ``dest``. Re-running writes the same keys.
        aws_conn_id: The AWS connection.
        max_workers: Parallel part and file uploads (multipart above 8 MiB).
        tracking_uri: MLflow tracking URI for model sources; default: the run's own.
    """

    template_fields: ClassVar[Sequence[str]] = ("source_uri", "dest")
    ui_color: ClassVar[str] = "#c5e1f5"

    def __init__(self, task_id: str, source_uri: Artifact | str, dest: str, *,
                 aws_conn_id: str = "aws_default", max_workers: int = 16,
                 tracking_uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.source_uri = source_uri
        self.dest = dest
        self.aws_conn_id = aws_conn_id
        self.max_workers = max_workers
        self.tracking_uri = tracking_uri

    def execute(self, context: Context) -> Artifact:
        uri = uri_of(self.source_uri)
        if not uri.startswith(MLFLOW_SCHEMES):
            return self._upload(uri, _local_path(uri))
        tracking_uri = self.tracking_uri or context["mlflow_run"].client.tracking_uri
        with tempfile.TemporaryDirectory(prefix="mlpipe-upload-") as tmp:
            local = _download_model(uri, tracking_uri, Path(tmp))
            return self._upload(uri, local, kind=ArtifactKind.MODEL)

    def _upload(self, uri: str, local: Path, kind: ArtifactKind | None = None) -> Artifact:
        bucket, key = split_s3(self.dest, what="dest")
        if local.is_dir():
            target, guess = f"s3://{bucket}/{dir_prefix(key)}", ArtifactKind.DATASET
        elif local.is_file():
            name = key + local.name if not key or key.endswith("/") else key
            target, guess = f"s3://{bucket}/{name}", ArtifactKind.FILE
        else:
            raise S3OperatorError(f"cannot upload {uri!r}: no such file or folder")
        if isinstance(self.source_uri, Artifact):
            kind = self.source_uri.kind
        store = open_store(target, s3_options=store_options(self.aws_conn_id,
                                                            max_workers=self.max_workers))
        log.info("Uploading %s to %s", local, target)
        try:
            stat = store.put_dir(local, target) if local.is_dir() else store.put_file(local,
                                                                                        target)
        except Exception as exc:
            # The store translates most boto errors, but the transfer manager's
            # S3UploadFailedError gets through untranslated: name the target either way.
            if not isinstance(exc, ArtifactError) and not is_boto_error(exc):
                raise
            reason = redact(" ".join(str(exc).split()))
            raise S3OperatorError(f"upload of {uri!r} to {target!r} (connection "
                                  f"{self.aws_conn_id!r}) failed: {reason}", bucket=bucket,
                                  prefix=key, conn_id=self.aws_conn_id) from None
        extra: dict[str, Any] = {"source": uri}
        if stat.etag is not None:
            extra["etag"] = stat.etag
        if stat.version_id is not None:
            extra["version_id"] = stat.version_id
        log.info("Uploaded %d bytes to %s (sha256 %s)", stat.size, target, stat.sha256[:12])
        return Artifact(uri=target, kind=kind or guess, sha256=stat.sha256, size=stat.size,
                        extra=extra)


def _download_model(uri: str, tracking_uri: str, folder: Path) -> Path:
    """The files of the model (or run artifact) ``uri``, downloaded into ``folder``."""
    from mlpipe.artifacts.mlflow_store import MlflowArtifactStore

    store = MlflowArtifactStore(tracking_uri=tracking_uri)
    try:
        local = store.download_into(uri, folder)
    except ArtifactError as exc:
        raise S3OperatorError(f"cannot upload {uri!r}: {exc} (tracking URI "
                              f"{tracking_uri!r})") from None
    log.info("Downloaded %s from MLflow into %s", uri, local)
    return local


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(url2pathname(urlparse(uri).path))
    if "://" in uri:
        raise S3OperatorError(f"cannot upload {uri!r}: only local files and folders "
                              "(file:// URIs or paths) and MLflow models (models:/, runs:/) "
                              "can be uploaded")
    return Path(os.path.expanduser(uri))
