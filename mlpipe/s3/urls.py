"""The one ``s3://bucket/key`` parser."""

from __future__ import annotations

from mlpipe.errors import MlpipeError

__all__ = ["InvalidS3UrlError", "parse_s3_url"]

SCHEME = "s3://"


class InvalidS3UrlError(MlpipeError, ValueError):
    """A value that should be an ``s3://BUCKET/KEY`` URL is not one; names the value."""

    def __init__(self, what: str, url: object, problem: str) -> None:
        self.url = url
        super().__init__(f"{what} {url!r} {problem}; write s3://BUCKET/KEY")


def parse_s3_url(url: str, *, what: str = "URL") -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; the key may be empty.

    Raises:
        InvalidS3UrlError: ``url`` is not a string starting ``s3://`` or names no bucket;
            the message starts with ``what`` (e.g. ``"source"``) and the value.
    """
    if not isinstance(url, str) or not url.startswith(SCHEME):
        raise InvalidS3UrlError(what, url, "is not an s3:// URL")
    bucket, _, key = url[len(SCHEME):].partition("/")
    if not bucket:
        raise InvalidS3UrlError(what, url, "names no bucket")
    return bucket, key


def join_key(prefix: str, name: str) -> str:
    """``name`` under ``prefix`` with exactly one ``/`` between (``name`` if no prefix)."""
    return f"{prefix.rstrip('/')}/{name}" if prefix else name
