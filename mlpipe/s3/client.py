"""The one place a boto3 S3 client is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlpipe.s3.credentials import S3Credentials

__all__ = ["make_client", "parse_timestamp"]


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
    # A listing carries a LastModified per object; botocore parses each with dateutil
    # (about 0.1 ms each: most of the client's time listing 2,000 objects). This session's
    # clients only.
    session._session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp)
    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"max_attempts": credentials.max_attempts, "mode": "standard"},
        connect_timeout=credentials.connect_timeout,
        read_timeout=credentials.read_timeout,
        s3={"addressing_style": credentials.addressing_style},
    )
    return session.client("s3", endpoint_url=credentials.endpoint_url, config=config,
                          verify=credentials.verify)


def parse_timestamp(value: Any) -> datetime:
    """An S3 timestamp as an aware datetime: ISO 8601 (listings) fast, else botocore's way.

    ``2026-12-05T19:30:00.000Z`` goes through ``datetime.fromisoformat``; anything else (an
    HTTP date in a header, epoch seconds) through botocore's own parser.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    from botocore.utils import parse_timestamp as botocore_parse

    result: datetime = botocore_parse(value)
    return result
