"""``S3KeySensor``: waits for S3 objects, by exact key or by a wildcard pattern."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from mlpipe.core.operator import Context
from mlpipe.errors import DagDefinitionError, TaskError
from mlpipe.s3.urls import S3UriError, split_s3_uri
from mlpipe.sensors.base import BaseSensorOperator, log

_WILDCARD = re.compile(r"[*?\[]")


class S3KeySensor(BaseSensorOperator):
    """Done when every key in ``bucket_key`` exists (with ``wildcard_match``: when each
    pattern matches at least one object).

    ``bucket_key`` is a key, an ``s3://bucket/key`` URL, or a list of them (templated);
    ``bucket_name`` is needed for plain keys. Goes through ``S3Hook(aws_conn_id)`` (the
    connection's ``endpoint_url`` extra points it at MinIO or any S3-compatible server).
    """

    template_fields: ClassVar[tuple[str, ...]] = ("bucket_key", "bucket_name")

    def __init__(self, task_id: str, *, bucket_key: str | Sequence[str],
                 bucket_name: str | None = None, wildcard_match: bool = False,
                 aws_conn_id: str | None = "aws_default", **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        keys = [bucket_key] if isinstance(bucket_key, str) else list(bucket_key)
        if not keys or not all(isinstance(k, str) and k.strip() for k in keys):
            raise DagDefinitionError(f"sensor {self.task_id!r}: bucket_key must be a "
                                     f"non-empty key or list of keys, got {bucket_key!r}")
        self.bucket_key: str | list[str] = bucket_key if isinstance(bucket_key, str) else keys
        self.bucket_name = bucket_name
        self.wildcard_match = wildcard_match
        self.aws_conn_id = aws_conn_id
        if not any("{{" in k for k in keys):  # templated keys are checked when they render
            self.locations()

    def locations(self) -> list[tuple[str, str]]:
        """``(bucket, key)`` of each key; one clear line for a key that names no bucket."""
        keys = [self.bucket_key] if isinstance(self.bucket_key, str) else self.bucket_key
        found = []
        for key in keys:
            if self.bucket_name:
                if key.startswith("s3://"):
                    raise DagDefinitionError(
                        f"sensor {self.task_id!r}: bucket_key {key!r} is a full s3:// URL; "
                        "pass either the URL or bucket_name with a relative key, not both")
                found.append((self.bucket_name, key.lstrip("/")))
                continue
            try:
                bucket, path = split_s3_uri(key)
            except S3UriError:
                path = ""
            if not path:
                raise DagDefinitionError(
                    f"sensor {self.task_id!r}: bucket_key {key!r} is not an s3://BUCKET/KEY "
                    "URL; pass a full URL or set bucket_name")
            found.append((bucket, path))
        return found

    def poke(self, context: Context) -> bool:
        from mlpipe.hooks.s3 import S3Hook

        hook = S3Hook(self.aws_conn_id)
        try:
            locations = self.locations()
        except DagDefinitionError as exc:  # a templated key rendered into something unusable
            raise TaskError(str(exc)) from None
        for bucket, key in locations:
            if self.wildcard_match:
                if not _matches(hook, bucket, key):
                    log.info("%s: nothing matches s3://%s/%s yet", self.task_id, bucket, key)
                    return False
            elif not hook.check_for_key(key, bucket):
                log.info("%s: s3://%s/%s does not exist yet", self.task_id, bucket, key)
                return False
        return True


def _matches(hook: Any, bucket: str, pattern: str) -> bool:
    """True if an object of ``bucket`` matches ``pattern`` (listing only its fixed prefix)."""
    wildcard = _WILDCARD.search(pattern)
    prefix = pattern[: wildcard.start()] if wildcard else pattern
    return any(fnmatch.fnmatchcase(key, pattern) for key in hook.list_keys(bucket, prefix))
