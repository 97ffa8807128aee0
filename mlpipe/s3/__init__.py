"""The one S3 stack: URLs, credentials, the boto3 client and its errors.

``S3Hook`` (hooks), ``S3ArtifactStore`` (artifacts) and the S3 operators all go through
here, so an ``s3://`` URL is parsed, a connection mapped to credentials, a client built,
a prefix listed, a tree moved (``transfer``: boto3's transfer manager) and a boto error
described the same way everywhere. boto3 is imported only when a client is
made. May import: ``mlpipe.errors``, boto3/botocore.
"""

from __future__ import annotations

from mlpipe.s3.credentials import S3Credentials
from mlpipe.s3.urls import S3UriError, dir_prefix, join_key, split_s3_uri

__all__ = ["S3Credentials", "S3UriError", "dir_prefix", "join_key", "split_s3_uri"]
