"""Turn boto3/botocore exceptions into one-line ``ArtifactError``s (``mlpipe.s3.errors``
says what the exception means; this names the operation, the URI and the endpoint)."""

from __future__ import annotations

from mlpipe.errors import ArtifactError, ArtifactNotFoundError
from mlpipe.s3.errors import FailureKind, describe

__all__ = ["S3ErrorTranslator", "is_key_missing"]


def is_key_missing(exc: BaseException) -> bool:
    """True if S3 answered that there is no object at the key (404 to a HEAD, NoSuchKey)."""
    return describe(exc).kind is FailureKind.MISSING_KEY


class S3ErrorTranslator:
    """Builds the ``ArtifactError`` for a failed S3 call against one endpoint."""

    def __init__(self, endpoint_url: str | None, secret: str | None) -> None:
        self.where = endpoint_url or "the AWS default endpoint"
        self._secret = secret

    def translate(self, exc: BaseException, op: str, bucket: str, key: str) -> ArtifactError:
        """The error to raise (``from None``) in place of ``exc``."""
        uri = f"s3://{bucket}/{key}"
        failure = describe(exc, secret=self._secret)
        if failure.kind is FailureKind.MISSING_KEY:
            return ArtifactNotFoundError(
                uri, f"no object {key!r} in bucket {bucket!r} at endpoint {self.where}")
        if failure.kind is FailureKind.NO_BUCKET:  # a setup problem, not a missing artifact
            reason = f"bucket {bucket!r} does not exist"
        elif failure.kind is FailureKind.DENIED:
            reason = (f"access denied ({failure.code}); check the access key id, the secret "
                      "and the bucket's permissions")
        elif failure.kind is FailureKind.UNREACHABLE and "credentials" in failure.reason:
            reason = "no AWS credentials; pass aws_access_key_id and aws_secret_access_key"
        elif failure.kind is FailureKind.UNREACHABLE:
            reason = "cannot connect to the endpoint; is the server running and the URL right?"
        else:
            reason = failure.reason
        return ArtifactError(f"S3 {op} of {uri!r} failed at endpoint {self.where}: {reason}",
                             uri=uri)
