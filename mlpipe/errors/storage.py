"""Errors of storage: artifact stores and ``s3://`` URLs. One line naming the URI (and,
for S3, the endpoint), never a secret."""

from __future__ import annotations

from collections.abc import Iterable

from mlpipe.errors.base import MlpipeError, did_you_mean


class ArtifactError(MlpipeError):
    """An artifact store could not do what was asked; ``.uri`` names the artifact."""

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        self.uri = uri
        super().__init__(message)


class ArtifactNotFoundError(ArtifactError):
    """Nothing, or nothing complete, exists at the URI."""

    def __init__(self, uri: str, detail: str = "") -> None:
        super().__init__(
            f"artifact {uri!r} does not exist" + (f" ({detail})" if detail else ""), uri=uri
        )


class UnknownSchemeError(ArtifactError):
    """No artifact store is registered for the URI's scheme."""

    def __init__(self, uri: str, scheme: str, known: Iterable[str]) -> None:
        self.scheme = scheme
        self.known = sorted(known)
        what = f"unknown scheme {scheme!r}" if scheme else "no scheme"
        super().__init__(
            f"artifact uri {uri!r} has {what}; known: {self.known}"
            + did_you_mean(scheme, self.known)
            + " (write e.g. 'file:///abs/path' or 's3://bucket/key', or register a store "
            "with register_store())",
            uri=uri,
        )


class S3UriError(MlpipeError, ValueError):
    """A value that should be an ``s3://BUCKET/KEY`` URL is not one."""

    def __init__(self, uri: object, problem: str, *, what: str = "") -> None:
        self.uri = uri
        label = f"{what} {uri!r}" if what else repr(uri)
        super().__init__(f"{label} {problem}; write s3://BUCKET/KEY")
