"""``S3Credentials``: where and as whom to reach S3, however the caller was configured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["S3Credentials"]


@dataclass(frozen=True)
class S3Credentials:
    """Everything a client needs; None lets boto3 find a value its usual way.

    Built from an AWS connection by ``from_connection`` (login = key id, password =
    secret, the rest from its extra), so a hook, an artifact store and an operator reading
    the same connection make the same client.
    """

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    region_name: str | None = None
    #: MinIO or any S3-compatible server (None: AWS)
    endpoint_url: str | None = None
    #: TLS verification: a bool, or a CA bundle path
    verify: bool | str | None = None
    addressing_style: str = "auto"
    max_attempts: int = 3
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_connection(cls, login: str | None, password: str | None,
                        extra: Mapping[str, Any]) -> S3Credentials:
        """The credentials of an AWS connection (its login, password and extra)."""
        verify = extra.get("verify")
        return cls(
            aws_access_key_id=login or extra.get("aws_access_key_id"),
            aws_secret_access_key=password or extra.get("aws_secret_access_key"),
            aws_session_token=extra.get("aws_session_token"),
            region_name=extra.get("region_name"),
            endpoint_url=extra.get("endpoint_url"),
            verify=None if verify is None else _as_verify(verify),
            addressing_style=str(extra.get("addressing_style", "auto")),
            max_attempts=int(extra.get("max_attempts", 3)),
            connect_timeout=float(extra.get("connect_timeout", 10)),
            read_timeout=float(extra.get("read_timeout", 60)),
        )

    def with_region(self, region_name: str | None) -> S3Credentials:
        """These credentials in another region (unchanged when ``region_name`` is None)."""
        return self if region_name is None else replace(self, region_name=region_name)

    @property
    def where(self) -> str:
        """The endpoint as errors name it."""
        if self.endpoint_url:
            return self.endpoint_url
        return f"AWS S3 (region {self.region_name})" if self.region_name else "AWS S3"

    def __repr__(self) -> str:  # never the secret or the token
        return (f"S3Credentials(endpoint_url={self.endpoint_url!r}, "
                f"region_name={self.region_name!r}, "
                f"aws_access_key_id={self.aws_access_key_id!r})")


def _as_verify(value: Any) -> bool | str:
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    return value if isinstance(value, str) else bool(value)
