"""The one place a boto3 S3 client is made."""

from __future__ import annotations

from typing import Any

from mlpipe.s3.credentials import S3Credentials

__all__ = ["make_client"]


def make_client(credentials: S3Credentials, *, max_pool_connections: int = 32) -> Any:
    """A boto3 S3 client; its connection pool fits ``max_pool_connections`` transfers."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=credentials.aws_access_key_id,
        aws_secret_access_key=credentials.aws_secret_access_key,
        aws_session_token=credentials.aws_session_token,
        region_name=credentials.region_name,
    )
    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"max_attempts": credentials.max_attempts, "mode": "standard"},
        connect_timeout=credentials.connect_timeout,
        read_timeout=credentials.read_timeout,
        s3={"addressing_style": credentials.addressing_style},
    )
    return session.client("s3", endpoint_url=credentials.endpoint_url, config=config,
                          verify=credentials.verify)
