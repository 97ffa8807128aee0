"""``s3://bucket/key`` URLs: parsed and checked in one place."""

from __future__ import annotations

from mlpipe.errors import S3UriError

__all__ = ["S3UriError", "dir_prefix", "join_key", "split_s3_uri"]


def split_s3_uri(uri: object, *, what: str = "") -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")`` (the key may be empty).

    ``what`` names the value in the error (``"source"``, ``"dest"``).
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3UriError(uri, "is not an s3:// URL", what=what)
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise S3UriError(uri, "names no bucket", what=what)
    return bucket, key


def dir_prefix(key: str) -> str:
    """The listing prefix of the folder ``key``: ``""`` for the bucket's root, else ``key/``."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def join_key(prefix: str, name: str) -> str:
    """``prefix/name`` (just ``name`` under the bucket's root)."""
    return f"{prefix.rstrip('/')}/{name}" if prefix else name
