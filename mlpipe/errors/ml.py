"""Errors of the ML path: pipeline configs, the S3, deploy and registry steps, and serving.

Those raised while a task runs derive from ``TaskError``, so they are stored with the task
instance; the others are raised to the user before anything runs.
"""

from __future__ import annotations

from mlpipe.errors.base import MlpipeError
from mlpipe.errors.engine import TaskError


class ConfigError(MlpipeError):
    """A training config (or a model/device named in it) cannot be used.

    ``source`` is the file the config came from (``None`` for objects and dicts) and
    ``problems`` lists ``(field path, message)`` pairs.
    """

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.source = source
        self.problems = list(problems)
        text = "; ".join(f"{path}: {msg}" if path else msg for path, msg in self.problems)
        super().__init__(f"{source}: {text}" if source else text)


class DatasetError(MlpipeError, ValueError):
    """A data set cannot be built or read (no images, unknown split, missing manifest)."""


class CorruptImageError(TaskError):
    """An input file is not a decodable image and ``on_corrupt="fail"`` was asked for."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"corrupt image {path!r}: {reason}; fix or remove the file, or pass "
            "on_corrupt='skip' to skip it and count it in the manifest"
        )


class PipelineConfigError(MlpipeError):
    """The pipeline's YAML config is missing, unreadable or has bad values (field paths)."""


class S3OperatorError(TaskError):
    """An S3 operator failed; names the bucket, prefix and connection (never the secret)."""

    def __init__(self, message: str, *, bucket: str = "", prefix: str = "",
                 conn_id: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.conn_id = conn_id
        super().__init__(message)


class S3BucketNotFoundError(S3OperatorError):
    """The source bucket does not exist."""


class S3EmptyPrefixError(S3OperatorError):
    """No object (matching ``include``) is under the source prefix."""


class S3CredentialsError(S3OperatorError):
    """The endpoint refused the connection's credentials, or cannot be reached."""


class DeployError(TaskError):
    """The deployment failed after the alias moved (the alias has been moved back)."""


class ModelRegistryError(MlpipeError):
    """A registry lookup or change failed (unknown model, version or alias)."""


class ServeError(MlpipeError):
    """``mlpipe serve`` was given something it cannot serve."""


class ServingError(MlpipeError):
    """The serving endpoint is unreachable or answered with an error."""


class ModelNotReadyError(MlpipeError):
    """No model is loaded yet (e.g. the alias it follows is not set)."""


class BodyTooLargeError(MlpipeError):
    """A request body passed the serving limit (the server answers 413)."""
