"""What a failed boto3/botocore call means, as one line with the secrets masked.

``describe_failure`` sorts an exception into a ``kind`` that callers turn into their typed
error (the hook into ``HookError``/``ConnectionFailedError``, the artifact store into
``ArtifactError``/``ArtifactNotFoundError``): one classification, one masking, everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mlpipe.connections.masking import MASK, redact

__all__ = ["DENIED_CODES", "KEY_MISSING_CODES", "FailureKind", "S3Failure",
           "describe_failure", "is_boto_error", "is_key_missing", "mask"]

#: S3 codes meaning there is no object at the key (a HEAD answers a bare 404)
KEY_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
#: codes meaning the credentials (not the request) are wrong
DENIED_CODES = frozenset({
    "403", "AccessDenied", "AllAccessDisabled", "AuthorizationHeaderMalformed",
    "ExpiredToken", "InvalidAccessKeyId", "InvalidClientTokenId", "InvalidToken",
    "SignatureDoesNotMatch",
})

FailureKind = Literal["missing_key", "missing_bucket", "denied", "no_credentials",
                      "unreachable", "other"]


@dataclass(frozen=True)
class S3Failure:
    """``kind`` of failure, the S3 error ``code`` (``""`` if none) and a masked one-liner."""

    kind: FailureKind
    code: str
    detail: str

    @property
    def auth(self) -> bool:
        """True if the endpoint refused, or could not be asked: credentials or network."""
        return self.kind in ("denied", "no_credentials", "unreachable")


def is_boto_error(exc: BaseException) -> bool:
    """True for an exception raised by boto3 or botocore (their own classes)."""
    return type(exc).__module__.split(".")[0] in ("boto3", "botocore", "s3transfer")


def is_key_missing(exc: BaseException) -> bool:
    """True if S3 answered that there is no object at the key (404 to a HEAD, NoSuchKey)."""
    return _code(exc) in KEY_MISSING_CODES


def describe_failure(exc: BaseException, secrets: Iterable[str] = ()) -> S3Failure:
    """Classify a boto exception; ``detail`` never holds one of ``secrets``."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    code = _code(exc)
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}".strip(": ") if message else code
        kind: FailureKind = ("missing_key" if code in KEY_MISSING_CODES
                             else "missing_bucket" if code == "NoSuchBucket"
                             else "denied" if code in DENIED_CODES else "other")
        return S3Failure(kind, code, mask(detail, secrets))
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return S3Failure("no_credentials", "", mask(str(exc), secrets))
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return S3Failure("unreachable", "", mask(str(exc), secrets))
    return S3Failure("other", "", mask(str(exc), secrets))


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` on one line, ``secrets`` and the process's registered secrets as ``***``."""
    text = " ".join(text.split())
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return redact(text)


def _code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", "") or "unknown")
