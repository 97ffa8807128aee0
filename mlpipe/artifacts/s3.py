"""``S3ArtifactStore``: artifacts in S3 or any S3-compatible server, ``s3://bucket/key``.

A file is one PUT, or a multipart upload that appears only when completed (boto3's
transfer manager): a killed writer leaves no object at the key. Objects carry their sha256
as metadata (``x-amz-meta-sha256``), so ``stat`` needs no download. Directories and their
incomplete-marker are described in ``s3_tree``. Killed multipart uploads cost storage until
aborted: give buckets an ``AbortIncompleteMultipartUpload`` lifecycle rule.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from mlpipe.artifacts import localfs
from mlpipe.artifacts.base import ArtifactStat, ArtifactStore
from mlpipe.artifacts.s3_errors import S3ErrorTranslator, is_key_missing
from mlpipe.artifacts.s3_tree import (
    INCOMPLETE_MARKER,
    S3Object,
    dir_prefix,
    download_tree,
    hidden_name,
    split_s3_uri,
    upload_tree,
    visible_objects,
)
from mlpipe.errors import ArtifactError, ArtifactNotFoundError
from mlpipe.s3 import transfer
from mlpipe.s3.client import make_client
from mlpipe.s3.credentials import S3Credentials

__all__ = ["S3ArtifactStore"]

_MIB = 1024 * 1024
_T = TypeVar("_T")


class S3ArtifactStore(ArtifactStore):
    """Artifacts in S3 through boto3; ``endpoint_url`` selects an S3-compatible server.

    Args:
        endpoint_url: e.g. ``http://127.0.0.1:9000`` for MinIO; None for AWS.
        aws_access_key_id: Key id; None lets boto3 find credentials its usual way.
        aws_secret_access_key: The secret (never shown in errors).
        region_name: e.g. ``us-east-1``.
        max_workers: Parallel transfers, and the client's connection pool size.
        multipart_threshold: Files at least this big are uploaded in parts.
        multipart_chunksize: Part size (S3's minimum is 5 MiB).
        max_bandwidth: Transfer cap in bytes per second; None for none.
        credentials: All of the above that locate and sign (``mlpipe.s3.S3Credentials``,
            e.g. from an AWS connection); when given, the four arguments before are unused.
    """

    schemes = ("s3",)

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        region_name: str | None = None,
        max_workers: int = 16,
        multipart_threshold: int = 8 * _MIB,
        multipart_chunksize: int = 8 * _MIB,
        max_bandwidth: int | None = None,
        credentials: S3Credentials | None = None,
    ) -> None:
        if credentials is None:
            credentials = S3Credentials(aws_access_key_id=aws_access_key_id,
                                        aws_secret_access_key=aws_secret_access_key,
                                        region_name=region_name, endpoint_url=endpoint_url)
        self.credentials = credentials
        self.endpoint_url = credentials.endpoint_url
        self.max_workers = max_workers
        self.client: Any = make_client(credentials, max_pool_connections=max_workers)
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_workers,
            max_bandwidth=max_bandwidth,
        )
        self._errors = S3ErrorTranslator(credentials.endpoint_url,
                                         credentials.aws_secret_access_key)

    def open(self, uri: str) -> BinaryIO:
        """A stream of the object's body (botocore's ``StreamingBody``)."""
        bucket, key = self._file_key(uri)
        response = self._call("read", bucket, key,
                              lambda: self.client.get_object(Bucket=bucket, Key=key))
        body: BinaryIO = response["Body"]
        return body

    def write_bytes(self, uri: str, data: bytes) -> ArtifactStat:
        """Upload ``data`` (one PUT, or a multipart upload above the threshold)."""
        bucket, key = self._file_key(uri)
        sha = hashlib.sha256(data).hexdigest()
        self._call("write", bucket, key, lambda: self.client.upload_fileobj(
            io.BytesIO(data), bucket, key, ExtraArgs={"Metadata": {"sha256": sha}},
            Config=self.transfer_config))
        return self._stat_object(bucket, key)

    def put_file(self, local_path: str | Path, uri: str) -> ArtifactStat:
        """Upload a local file; the object appears only once the upload completes."""
        bucket, key = self._file_key(uri)
        try:
            with open(local_path, "rb") as stream:
                _, sha = localfs.hash_stream(stream)
        except OSError as exc:
            raise ArtifactError(f"cannot upload {str(local_path)!r} to {uri!r}: {exc}",
                                uri=uri) from None
        self._call("write", bucket, key, lambda: self.client.upload_file(
            str(local_path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha}},
            Config=self.transfer_config))
        return self._stat_object(bucket, key)

    def get_file(self, uri: str, local_path: str | Path) -> Path:
        """Download the object to ``local_path`` via a temp sibling."""
        bucket, key = self._file_key(uri)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = localfs.temp_sibling(dest)
        try:
            self._call("download", bucket, key, lambda: self.client.download_file(
                bucket, key, str(tmp), Config=self.transfer_config))
            localfs.replace_path(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def put_dir(self, local_dir: str | Path, uri: str) -> ArtifactStat:
        """Upload a tree under ``<key>/``, deleting objects the new tree does not have."""
        bucket, key = split_s3_uri(uri)
        source = Path(local_dir)
        if not source.is_dir():
            raise ArtifactError(f"cannot upload {str(source)!r} to {uri!r}: not a directory",
                                uri=uri)
        prefix = dir_prefix(key)
        entries = localfs.tree_entries(source)
        marker = prefix + INCOMPLETE_MARKER
        self._call("write", bucket, marker,
                   lambda: self.client.put_object(Bucket=bucket, Key=marker, Body=b""))
        previous = {k for k, _ in self._list_objects(bucket, prefix)}
        self._call("write", bucket, prefix, lambda: upload_tree(
            self.client, self.transfer_config, source, bucket, prefix, entries))
        stale = previous - {prefix + rel for rel, _, _ in entries} - {marker}
        if key.strip("/") and self._head(bucket, key.rstrip("/")) is not None:
            stale.add(key.rstrip("/"))  # a file of that name would shadow the directory
        self._delete(bucket, sorted(stale))
        self._delete(bucket, [marker])  # last: only now is the directory complete
        return localfs.tree_stat(entries)

    def get_dir(self, uri: str, local_dir: str | Path) -> Path:
        """Download every object under ``<key>/`` into ``local_dir`` (replaced whole)."""
        bucket, key = split_s3_uri(uri)
        prefix = dir_prefix(key)
        objects = self._complete_tree(uri, bucket, prefix)
        dest = Path(local_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = localfs.temp_sibling(dest)
        try:
            tmp.mkdir()
            self._call("download", bucket, prefix,
                       lambda: download_tree(self.client, self.transfer_config, uri, bucket,
                                             prefix, objects, tmp))
            localfs.replace_path(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def exists(self, uri: str) -> bool:
        """True for an object at the key, or a complete directory under ``<key>/``."""
        bucket, key = split_s3_uri(uri)
        if key and not key.endswith("/") and self._head(bucket, key) is not None:
            return True
        prefix = dir_prefix(key)
        if self._head(bucket, prefix + INCOMPLETE_MARKER) is not None:
            return False
        page = self._call("list", bucket, prefix, lambda: self.client.list_objects_v2(
            Bucket=bucket, Prefix=prefix, MaxKeys=1))
        return bool(page.get("KeyCount"))

    def list(self, uri: str, *, recursive: bool = False) -> builtins.list[str]:
        """Objects (and, not recursive, sub-prefixes ending ``/``) under ``<key>/``."""
        bucket, key = split_s3_uri(uri)
        prefix = dir_prefix(key)
        base = f"s3://{bucket}/"
        if recursive:
            return sorted(base + k for k, _ in visible_objects(self._list_objects(bucket, prefix)))
        files, dirs = self._list_level(bucket, prefix)
        if prefix + INCOMPLETE_MARKER in files:
            return []
        subdirs = sorted(d for d in dirs if not hidden_name(d))
        with ThreadPoolExecutor(self.max_workers) as pool:
            heads = pool.map(lambda d: self._head(bucket, d + INCOMPLETE_MARKER), subdirs)
            complete = [d for d, head in zip(subdirs, heads, strict=True) if head is None]
        return sorted([base + k for k in files if not hidden_name(k)]
                      + [base + d for d in complete])

    def stat(self, uri: str) -> ArtifactStat:
        """Size, sha256, ETag and VersionId of an object; size and manifest of a prefix."""
        bucket, key = split_s3_uri(uri)
        if key and not key.endswith("/"):
            head = self._head(bucket, key)
            if head is not None:
                return self._stat_object(bucket, key, head)
        prefix = dir_prefix(key)
        objects = self._complete_tree(uri, bucket, prefix)
        with ThreadPoolExecutor(self.max_workers) as pool:
            shas = list(pool.map(lambda obj: self._object_sha(bucket, obj[0]), objects))
        return localfs.tree_stat(
            (k[len(prefix):], size, sha) for (k, size), sha in zip(objects, shas, strict=True)
        )

    # -- helpers -----------------------------------------------------------------------

    def _call(self, op: str, bucket: str, key: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except (ClientError, BotoCoreError) as exc:
            raise self._errors.translate(exc, op, bucket, key) from None

    def _file_key(self, uri: str) -> tuple[str, str]:
        bucket, key = split_s3_uri(uri)
        if not key or key.endswith("/"):
            raise ArtifactError(
                f"{uri!r} names a directory, not a file; use put_dir()/get_dir() for trees",
                uri=uri,
            )
        return bucket, key

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_key_missing(exc):
                return None
            raise self._errors.translate(exc, "stat", bucket, key) from None
        except BotoCoreError as exc:
            raise self._errors.translate(exc, "stat", bucket, key) from None
        return head

    def _stat_object(self, bucket: str, key: str,
                     head: dict[str, Any] | None = None) -> ArtifactStat:
        head = head if head is not None else self._head(bucket, key)
        if head is None:
            raise ArtifactNotFoundError(f"s3://{bucket}/{key}")
        return ArtifactStat(
            size=int(head["ContentLength"]),
            sha256=self._object_sha(bucket, key, head),
            etag=str(head["ETag"]).strip('"'),
            version_id=head.get("VersionId"),
        )

    def _object_sha(self, bucket: str, key: str, head: dict[str, Any] | None = None) -> str:
        head = head if head is not None else self._head(bucket, key)
        recorded = str((head or {}).get("Metadata", {}).get("sha256", ""))
        if len(recorded) == 64:
            return recorded
        # Written by another tool: hash the body once.
        with self.open(f"s3://{bucket}/{key}") as body:
            return localfs.hash_stream(body)[1]

    def _list_objects(self, bucket: str, prefix: str) -> builtins.list[S3Object]:
        listed = self._call("list", bucket, prefix,
                            lambda: transfer.list_objects(self.client, bucket, prefix))
        return [(o["Key"], int(o["Size"])) for o in listed]

    def _list_level(self, bucket: str, prefix: str) -> tuple[set[str], set[str]]:
        return self._call("list", bucket, prefix,
                          lambda: transfer.list_level(self.client, bucket, prefix))

    def _complete_tree(self, uri: str, bucket: str, prefix: str) -> builtins.list[S3Object]:
        objects = self._list_objects(bucket, prefix)
        if any(k == prefix + INCOMPLETE_MARKER for k, _ in objects):
            raise ArtifactNotFoundError(uri, "incomplete: a put_dir is running or was killed")
        visible = visible_objects(objects)
        if not visible:
            raise ArtifactNotFoundError(uri, f"no objects under {prefix!r} in bucket "
                                             f"{bucket!r} at endpoint {self._errors.where}")
        return visible

    def _delete(self, bucket: str, keys: builtins.list[str]) -> None:
        if not keys:
            return
        failed = self._call("delete", bucket, keys[0], lambda: transfer.delete_keys(
            self.client, bucket, keys))
        if failed:
            first = failed[0]
            raise ArtifactError(
                f"S3 delete of 's3://{bucket}/{first.get('Key')}' failed at endpoint "
                f"{self._errors.where}: {first.get('Code')}: {first.get('Message')}",
                uri=f"s3://{bucket}/{first.get('Key')}",
            )
