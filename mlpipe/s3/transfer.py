"""Listing, batched deletes and parallel transfers on one shared client.

Transfers go through boto3's transfer manager (multipart above the threshold, a thread pool
of ``max_concurrency``), so they reuse the client's connection pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["delete_keys", "download_files", "list_level", "list_objects", "transfer_config",
           "transfer_manager", "upload_files"]

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def list_objects(client: Any, bucket: str, prefix: str = "", *,
                 page_size: int | None = None) -> list[dict[str, Any]]:
    """Every object under ``prefix`` (``Key``, ``ETag``, ``Size``...), all pages."""
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size} if page_size
        else {})
    return [obj for page in pages for obj in page.get("Contents", [])]


def list_level(client: Any, bucket: str, prefix: str) -> tuple[set[str], set[str]]:
    """The keys directly under ``prefix`` and its sub-prefixes (ending ``/``)."""
    files: set[str] = set()
    dirs: set[str] = set()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                             Delimiter="/")
    for page in pages:
        files.update(o["Key"] for o in page.get("Contents", []))
        dirs.update(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return files, dirs


def delete_keys(client: Any, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    """Delete ``keys`` in batches; return the per-key errors S3 reported (empty if none)."""
    errors: list[dict[str, Any]] = []
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = [{"Key": k} for k in keys[start:start + _DELETE_BATCH]]
        result = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors.extend(result.get("Errors", []))
    return errors


def transfer_config(max_concurrency: int, **options: Any) -> Any:
    """A ``TransferConfig`` of ``max_concurrency`` threads (``options``: its other fields)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(max_concurrency=max_concurrency, use_threads=True, **options)


@contextmanager
def transfer_manager(client: Any, config: Any) -> Iterator[Any]:
    """boto3's transfer manager on ``client`` (``config``: a ``TransferConfig``)."""
    from boto3.s3.transfer import create_transfer_manager

    with create_transfer_manager(client, config) as manager:
        yield manager


def upload_files(client: Any, config: Any,
                 uploads: Iterable[tuple[str, str, str, dict[str, Any] | None]]) -> None:
    """Upload ``(local path, bucket, key, extra_args)`` in parallel; the first error raises."""
    with transfer_manager(client, config) as manager:
        futures = [manager.upload(path, bucket, key, extra_args=extra)
                   for path, bucket, key, extra in uploads]
        for future in futures:
            future.result()


def download_files(client: Any, config: Any,
                   downloads: Iterable[tuple[str, str, str]]) -> None:
    """Download ``(bucket, key, local path)`` in parallel (parents must exist)."""
    with transfer_manager(client, config) as manager:
        futures = [manager.download(bucket, key, path) for bucket, key, path in downloads]
        for future in futures:
            future.result()
