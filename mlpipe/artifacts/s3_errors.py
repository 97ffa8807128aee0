"""Turn boto3/botocore exceptions into one-line ``ArtifactError``s.

The line names the operation, the ``s3://bucket/key``, the endpoint and the reason, and
never the secret key (it is masked should a server ever echo it).
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from mlpipe.artifacts.errors import ArtifactError, ArtifactNotFoundError

__all__ = ["S3ErrorTranslator", "is_key_missing"]

_KEY_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({
    "403", "AccessDenied", "AllAccessDisabled", "ExpiredToken", "InvalidAccessKeyId",
    "InvalidToken", "SignatureDoesNotMatch",
})


def is_key_missing(exc: ClientError) -> bool:
    """True if S3 answered that there is no object at the key (404 to a HEAD, NoSuchKey)."""
    return str(exc.response.get("Error", {}).get("Code", "")) in _KEY_MISSING


class S3ErrorTranslator:
    """Builds the ``ArtifactError`` for a failed S3 call against one endpoint."""

    def __init__(self, endpoint_url: str | None, secret: str | None) -> None:
        self.where = endpoint_url or "the AWS default endpoint"
        self._secret = secret

    def translate(
        self, exc: ClientError | BotoCoreError, op: str, bucket: str, key: str
    ) -> ArtifactError:
        """The error to raise (``from None``) in place of ``exc``."""
        uri = f"s3://{bucket}/{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _KEY_MISSING:
                return ArtifactNotFoundError(uri, self._clean(
                    f"no object {key!r} in bucket {bucket!r} at endpoint {self.where}"))
            if code == "NoSuchBucket":  # a setup problem, not a missing artifact
                reason = f"bucket {bucket!r} does not exist"
            elif code in _DENIED:
                reason = (f"access denied ({code}); check the access key id, the secret "
                          "and the bucket's permissions")
            else:
                reason = f"{code}: {error.get('Message', '')}".strip(": ")
        elif isinstance(exc, NoCredentialsError):
            reason = "no AWS credentials; pass aws_access_key_id and aws_secret_access_key"
        elif isinstance(exc, EndpointConnectionError):
            reason = "cannot connect to the endpoint; is the server running and the URL right?"
        else:
            reason = str(exc)
        return ArtifactError(
            self._clean(f"S3 {op} of {uri!r} failed at endpoint {self.where}: {reason}"),
            uri=uri,
        )

    def _clean(self, text: str) -> str:
        text = " ".join(text.split())
        if self._secret:
            text = text.replace(self._secret, "***")
        return text
