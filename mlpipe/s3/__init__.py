"""The one S3 stack that ``mlpipe.hooks.s3``, ``mlpipe.artifacts.s3`` and the S3 operators share.

- ``urls``: the ``s3://bucket/key`` parser;
- ``client``: the client settings an AWS connection (or boto3's defaults) maps to, and the
  one factory that builds a pooled boto3 client from them;
- ``errors``: what a failed boto call means (missing key, denied...), one line, secrets masked;
- ``transfer``: listing, batched deletes and parallel transfers through boto3's manager.

May import ``mlpipe.errors``, ``mlpipe.connections.masking`` and boto3/botocore (only inside
functions: importing this package loads neither).
"""

from __future__ import annotations

from mlpipe.s3.client import S3ClientSettings, make_client
from mlpipe.s3.errors import S3Failure, describe_failure, is_boto_error
from mlpipe.s3.urls import InvalidS3UrlError, parse_s3_url

__all__ = [
    "InvalidS3UrlError",
    "S3ClientSettings",
    "S3Failure",
    "describe_failure",
    "is_boto_error",
    "make_client",
    "parse_s3_url",
]
