"""Legal ids: DAG, task and group ids, and run ids (pure checks, no IO).

Ids become path segments (logs, artifact prefixes), so none may hold a path separator or
be made only of dots.
"""

from __future__ import annotations

import re

from mlpipe.errors import InvalidTaskIdError

ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
ID_RULE = ("use only ASCII letters, digits, '_', '-' and '.', at most 250 characters, "
           "not only dots")

#: Airflow's run id alphabet: ``scheduled__2024-01-01T00:00:00+00:00`` is legal.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.~:+\-]{1,250}")
RUN_ID_RULE = ("use only ASCII letters, digits and '_', '.', '~', ':', '+', '-', at most "
               "250 characters, no '..'")


def validate_id(kind: str, value: object) -> str:
    """Return ``value`` if it is a legal DAG, task or group id, else raise."""
    if (not isinstance(value, str) or not ID_PATTERN.fullmatch(value)
            or not value.strip(".")):
        raise InvalidTaskIdError(kind, value, ID_RULE)
    return value


def validate_run_id(value: object) -> str:
    """Return ``value`` if it is a legal run id, else raise ``InvalidTaskIdError``."""
    if not isinstance(value, str) or not RUN_ID_PATTERN.fullmatch(value) or ".." in value \
            or not value.strip("."):
        raise InvalidTaskIdError("run_id", value, RUN_ID_RULE)
    return value
