"""Errors of the artifact stores.

The hierarchy (under ``mlpipe.errors.MlpipeError``)::

    ArtifactError                 an artifact cannot be read, written or found
    ├── ArtifactNotFoundError         nothing (complete) exists at the URI
    └── UnknownSchemeError            no store is registered for the URI's scheme

Messages are one line naming the URI (and, for S3, the endpoint), never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlpipe.errors import MlpipeError, did_you_mean

__all__ = ["ArtifactError", "ArtifactNotFoundError", "UnknownSchemeError"]


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
