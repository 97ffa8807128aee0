"""``S3Hook``: boto3's S3 client configured by an AWS connection (boto3 loads on first use).

The connection's login/password are the access key id and secret; extras: ``endpoint_url``
(MinIO or any S3-compatible server), ``region_name``, ``aws_session_token``,
``addressing_style``, ``max_attempts``, ``connect_timeout``, ``read_timeout``, ``verify``,
``bucket`` (what ``test_connection`` lists).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlpipe.connections.backends import get_connection
from mlpipe.connections.connection import Connection
from mlpipe.errors import ConnectionFailedError, HookError
from mlpipe.hooks.base import BaseHook
from mlpipe.s3 import transfer
from mlpipe.s3.client import make_client
from mlpipe.s3.credentials import S3Credentials
from mlpipe.s3.errors import FailureKind, describe, is_boto_error
from mlpipe.s3.urls import S3UriError, join_key, split_s3_uri


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``; anything else is a ``HookError``."""
    try:
        return split_s3_uri(url)
    except S3UriError as exc:
        raise HookError(None, str(url), str(exc)) from None


def credentials_for(conn_id: str | None, *, connection: Connection | None = None
                    ) -> S3Credentials:
    """The S3 credentials of an AWS connection (None: boto3's default chain)."""
    if conn_id is None and connection is None:
        return S3Credentials()
    conn = connection if connection is not None else get_connection(str(conn_id))
    return S3Credentials.from_connection(conn.login, conn.password, conn.extra)


class S3Hook(BaseHook):
    """S3 through the connection ``aws_conn_id`` (None: boto3's default credentials)."""

    def __init__(self, aws_conn_id: str | None = "aws_default", *,
                 region_name: str | None = None, max_pool_connections: int = 32,
                 connection: Connection | None = None) -> None:
        super().__init__(aws_conn_id, connection=connection)
        self.region_name = region_name
        self.max_pool_connections = max_pool_connections
        self._client: Any = None

    @property
    def aws_conn_id(self) -> str | None:
        return self.conn_id

    def _extra(self) -> dict[str, Any]:
        return self.connection.extra if self.conn_id is not None else {}

    def credentials(self) -> S3Credentials:
        """What this hook's client is made from (``mlpipe.s3``, shared with the artifact
        store and the operators)."""
        if self.conn_id is None:
            return S3Credentials(region_name=self.region_name)
        return credentials_for(self.conn_id, connection=self.connection).with_region(
            self.region_name)

    def endpoint(self) -> str:
        if self.conn_id is None:
            return f"AWS S3 (region {self.region_name})" if self.region_name else "AWS S3"
        return self.connection.endpoint()

    def get_conn(self) -> Any:
        """The boto3 S3 client (created once per hook)."""
        if self._client is None:
            self._client = make_client(self.credentials(),
                                       max_pool_connections=self.max_pool_connections)
        return self._client

    @contextmanager
    def translate_errors(self, action: str) -> Iterator[None]:
        """Turn boto errors into one line naming the connection, the endpoint and the cause."""
        try:
            yield
        except Exception as exc:
            if not is_boto_error(exc):
                raise
            failure = describe(exc)
            kind = (ConnectionFailedError
                    if failure.kind in (FailureKind.DENIED, FailureKind.UNREACHABLE)
                    else HookError)
            raise kind(self.conn_id, self.endpoint(), f"{action}: {failure.reason}") from None

    # -- listing ---------------------------------------------------------------------------

    def list_objects(self, bucket_name: str, prefix: str = "", *,
                     page_size: int | None = None) -> list[dict[str, Any]]:
        """Every object under ``prefix`` (``Key``, ``ETag``, ``Size``...), all pages."""
        with self.translate_errors(f"list s3://{bucket_name}/{prefix}"):
            return transfer.list_objects(self.get_conn(), bucket_name, prefix,
                                         page_size=page_size)

    def list_keys(self, bucket_name: str, prefix: str = "", *,
                  page_size: int | None = None) -> list[str]:
        """The keys under ``prefix``, all pages (``page_size`` keys per request)."""
        return [obj["Key"] for obj in self.list_objects(bucket_name, prefix,
                                                        page_size=page_size)]

    def check_for_key(self, key: str, bucket_name: str | None = None) -> bool:
        """True if the object exists."""
        bucket, key = _bucket_and_key(key, bucket_name)
        with self.translate_errors(f"head s3://{bucket}/{key}"):
            try:
                self.get_conn().head_object(Bucket=bucket, Key=key)
            except Exception as exc:
                if is_boto_error(exc) and describe(exc).kind is FailureKind.MISSING_KEY:
                    return False
                raise
        return True

    # -- single files ----------------------------------------------------------------------

    def load_file(self, filename: str | Path, key: str, bucket_name: str | None = None, *,
                  replace: bool = False) -> None:
        """Upload a local file (``key`` may be a full ``s3://`` URL)."""
        bucket, key = _bucket_and_key(key, bucket_name)
        if not replace and self.check_for_key(key, bucket):
            raise HookError(self.conn_id, self.endpoint(),
                            f"s3://{bucket}/{key} exists already; pass replace=True")
        with self.translate_errors(f"upload {filename} to s3://{bucket}/{key}"):
            self.get_conn().upload_file(str(filename), bucket, key)

    def download_file(self, key: str, bucket_name: str | None = None, *,
                      local_path: str | Path) -> Path:
        """Download one object to ``local_path`` (a file, or a folder to put it in)."""
        bucket, key = _bucket_and_key(key, bucket_name)
        target = Path(local_path)
        if target.is_dir():
            target = target / Path(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.translate_errors(f"download s3://{bucket}/{key}"):
            # boto3 writes a temporary file and renames it: no half file under the name
            self.get_conn().download_file(bucket, key, str(target))
        return target

    def fetch_object(self, key: str, bucket_name: str, local_path: str | Path
                     ) -> tuple[int, str, str]:
        """Download one object with a single GET, hashing it on the way to disk.

        The bytes go to a hidden temp sibling that is renamed over ``local_path`` once
        complete (no half file under the name; no fsync per file: callers that need a
        durable set write a manifest last). Returns ``(size, sha256, etag)`` of exactly what
        was written, the ETag from the same response.
        """
        import hashlib

        from mlpipe.artifacts.localfs import temp_sibling

        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(target)
        digest = hashlib.sha256()
        size = 0
        with self.translate_errors(f"download s3://{bucket_name}/{key}"):
            response = self.get_conn().get_object(Bucket=bucket_name, Key=key)
            try:
                with open(tmp, "wb") as out:
                    for chunk in response["Body"].iter_chunks(1024 * 1024):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return size, digest.hexdigest(), str(response.get("ETag", "")).strip('"')

    # -- whole prefixes, in parallel ---------------------------------------------------------

    def upload_prefix(self, local_dir: str | Path, bucket_name: str, prefix: str = "", *,
                      max_workers: int = 16) -> list[str]:
        """Upload every file under ``local_dir`` to ``prefix``; returns the keys."""
        root = Path(local_dir)
        if not root.is_dir():
            raise HookError(self.conn_id, self.endpoint(), f"{root} is not a directory")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        keys = [join_key(prefix, p.relative_to(root).as_posix()) for p in files]
        with self.translate_errors(f"upload {root} to s3://{bucket_name}/{prefix}"):
            transfer.upload_files(self.get_conn(), transfer.transfer_config(max_workers),
                                  [(str(p), bucket_name, k, None)
                                   for p, k in zip(files, keys, strict=True)])
        return keys

    def download_prefix(self, bucket_name: str, prefix: str, local_dir: str | Path, *,
                        max_workers: int = 16) -> list[Path]:
        """Download every object under ``prefix`` into ``local_dir``; returns the files."""
        root = Path(local_dir).resolve()
        targets: list[tuple[str, Path]] = []
        for key in self.list_keys(bucket_name, prefix):
            if key.endswith("/"):  # a folder marker
                continue
            target = (root / key[len(prefix):].lstrip("/")).resolve()
            if not target.is_relative_to(root):
                raise HookError(self.conn_id, self.endpoint(),
                                f"key {key!r} would be written outside {root}")
            target.parent.mkdir(parents=True, exist_ok=True)
            targets.append((key, target))
        with self.translate_errors(f"download s3://{bucket_name}/{prefix}"):
            transfer.download_files(self.get_conn(), transfer.transfer_config(max_workers),
                                    [(bucket_name, k, str(t)) for k, t in targets])
        return [t for _, t in targets]

    # -- checking ------------------------------------------------------------------------------

    def test_connection(self) -> str:
        """List the ``bucket`` extra (or the schema) if set, else list the buckets."""
        bucket = self._extra().get("bucket") or (self.connection.schema if self.conn_id
                                                  else None)
        client = self.get_conn()
        if bucket:
            with self.translate_errors(f"list bucket {bucket!r}"):
                client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return f"listed bucket {bucket!r}"
        with self.translate_errors("list buckets"):
            buckets = client.list_buckets().get("Buckets", [])
        return f"{len(buckets)} bucket(s) visible"


def _bucket_and_key(key: str, bucket_name: str | None) -> tuple[str, str]:
    return (bucket_name, key) if bucket_name else parse_s3_url(key)
