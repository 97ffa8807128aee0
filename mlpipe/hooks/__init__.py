"""Hooks: clients of external systems configured by connections.

Importing this package loads neither boto3, SQLAlchemy nor mlflow: each hook imports its
library when it first connects.

May import: mlpipe.connections, mlpipe.s3, mlpipe.artifacts, mlpipe.tracking, mlpipe.settings.
"""

from __future__ import annotations

from mlpipe.hooks.base import BaseHook
from mlpipe.hooks.mlflow_hook import MlflowHook
from mlpipe.hooks.registry import hook_for
from mlpipe.hooks.s3 import S3Hook
from mlpipe.hooks.sql import PostgresHook, SqlHook

__all__ = ["BaseHook", "MlflowHook", "PostgresHook", "S3Hook", "SqlHook", "hook_for"]
