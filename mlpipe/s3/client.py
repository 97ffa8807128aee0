"""The one mapping from an AWS connection to client settings, and the one client factory.

An AWS connection's ``login``/``password`` are the access key id and secret (or the extras
``aws_access_key_id``/``aws_secret_access_key``); extras ``aws_session_token``,
``region_name``, ``endpoint_url`` (MinIO or any S3-compatible server), ``verify``,
``max_attempts``, ``connect_timeout``, ``read_timeout``, ``addressing_style``. Anything left
unset falls to boto3's own defaults (``AWS_*`` environment variables, ``~/.aws``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ConnectionLike", "S3ClientSettings", "make_client"]


class ConnectionLike(Protocol):
    """The fields of ``mlpipe.connections.Connection`` read here."""

    login: str | None
    password: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class S3ClientSettings:
    """Everything a boto3 S3 client is built from (``repr`` hides the secrets)."""

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    region_name: str | None = None
    endpoint_url: str | None = None
    verify: bool | str | None = None
    max_attempts: int = 3
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    addressing_style: str = "auto"

    @classmethod
    def from_connection(cls, conn: ConnectionLike | None, *,
                        region_name: str | None = None) -> S3ClientSettings:
        """The settings of an AWS connection; None: boto3's defaults (``region_name`` wins)."""
        if conn is None:
            return cls(region_name=region_name)
        extra = conn.extra or {}
        verify = extra.get("verify")
        return cls(
            aws_access_key_id=conn.login or extra.get("aws_access_key_id"),
            aws_secret_access_key=conn.password or extra.get("aws_secret_access_key"),
            aws_session_token=extra.get("aws_session_token"),
            region_name=region_name or extra.get("region_name"),
            endpoint_url=extra.get("endpoint_url"),
            verify=None if verify is None else as_verify(verify),
            max_attempts=int(extra.get("max_attempts", 3)),
            connect_timeout=float(extra.get("connect_timeout", 10)),
            read_timeout=float(extra.get("read_timeout", 60)),
            addressing_style=str(extra.get("addressing_style", "auto")),
        )

    @property
    def where(self) -> str:
        """The endpoint, for messages."""
        return self.endpoint_url or "the AWS default endpoint"

    def secrets(self) -> list[str]:
        """The values no message may show."""
        return [s for s in (self.aws_secret_access_key, self.aws_session_token) if s]


def make_client(settings: S3ClientSettings, *, max_pool_connections: int) -> Any:
    """A boto3 S3 client (thread-safe; share one) with a pool of ``max_pool_connections``."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
        region_name=settings.region_name,
    )
    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        s3={"addressing_style": settings.addressing_style},
    )
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config,
                          verify=settings.verify)


def as_verify(value: Any) -> bool | str:
    """A ``verify`` extra as boto3 takes it: a bool, or the path of a CA bundle."""
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    return value if isinstance(value, str) else bool(value)
