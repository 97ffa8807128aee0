"""What a boto3/botocore exception means, in one line and without the secret.

``describe`` sorts an exception into a ``Failure`` kind; each caller raises its own typed
error from it (the hook a ``HookError``, the artifact store an ``ArtifactError``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Failure", "FailureKind", "describe", "is_boto_error"]

_KEY_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({
    "403", "AccessDenied", "AllAccessDisabled", "AuthorizationHeaderMalformed",
    "ExpiredToken", "InvalidAccessKeyId", "InvalidClientTokenId", "InvalidToken",
    "SignatureDoesNotMatch",
})


class FailureKind(StrEnum):
    MISSING_KEY = "missing_key"  # no object at the key
    NO_BUCKET = "no_bucket"  # the bucket does not exist
    DENIED = "denied"  # the credentials are wrong or lack permission
    UNREACHABLE = "unreachable"  # no credentials, or the endpoint cannot be reached
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    #: the reason, one line, secret masked
    reason: str
    code: str = ""


def is_boto_error(exc: BaseException) -> bool:
    """True for exceptions raised by boto3 or botocore (the transfer manager's included)."""
    return type(exc).__module__.split(".")[0] in ("boto3", "botocore")


def describe(exc: BaseException, *, secret: str | None = None) -> Failure:
    """The kind and reason of a failed S3 call."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        message = error.get("Message") or ""
        if code in _KEY_MISSING:
            return Failure(FailureKind.MISSING_KEY, _clean(f"{code}: {message}", secret), code)
        if code == "NoSuchBucket":
            return Failure(FailureKind.NO_BUCKET, _clean(f"{code}: {message}", secret), code)
        kind = FailureKind.DENIED if code in _DENIED else FailureKind.OTHER
        return Failure(kind, _clean(f"{code}: {message or exc}".strip(": "), secret), code)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return Failure(FailureKind.UNREACHABLE, _clean(str(exc), secret))
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return Failure(FailureKind.UNREACHABLE, _clean(str(exc), secret))
    return Failure(FailureKind.OTHER, _clean(str(exc), secret))


def _clean(text: str, secret: str | None) -> str:
    text = " ".join(text.split())
    return text.replace(secret, "***") if secret else text
