"""XCom values as JSON: plain JSON plus datetime, date, timedelta, Path and Artifact.

Never pickle.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any

from mlpipe.core.artifact import Artifact
from mlpipe.errors import XComError

_TAG = "__mlpipe_type__"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "value": value.total_seconds()}
    if isinstance(value, PurePath):
        return {_TAG: "path", "value": str(value)}
    if isinstance(value, Artifact):
        return {_TAG: "artifact", "value": value.to_json()}
    to_json = getattr(value, "__mlpipe_json__", None)
    if callable(to_json):
        return to_json()
    raise TypeError(type(value).__name__)


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TAG)
    if kind is None:
        return obj
    value = obj["value"]
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timedelta":
        return timedelta(seconds=value)
    if kind == "path":
        return Path(value)
    if kind == "artifact":
        return Artifact.from_json(value)
    return obj


# One encoder and one decoder for the process: ``json.dumps``/``loads`` with options build a
# new one per call, which cost more than encoding a small value.
_ENCODER = json.JSONEncoder(default=_encode, separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(object_hook=_decode)


def serialize(value: Any, *, what: str, max_bytes: int) -> str:
    """JSON text for ``value``; raises ``XComError`` saying what to do instead."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise XComError(
            f"{what} is not JSON-serialisable ({exc}); return JSON types (dict, list, str, "
            "int, float, bool, None) or datetime, date, timedelta, Path, Artifact; for large "
            "or binary data write an artifact and return its URI"
        ) from None
    size = len(text.encode())
    if size > max_bytes:
        raise XComError(
            f"{what} is {size} bytes, over the XCom limit of {max_bytes} bytes "
            "(MLPIPE_XCOM_MAX_BYTES); write the data to an artifact and return its URI instead"
        )
    return text


def deserialize(text: str) -> Any:
    """The value ``serialize`` wrote."""
    return _DECODER.decode(text)
