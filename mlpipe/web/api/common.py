"""What the API modules share: role dependencies, paging, id checks and date formatting."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query

from mlpipe.core.ids import validate_id, validate_run_id
from mlpipe.web.accounts import User
from mlpipe.web.auth import require_role

Viewer = Annotated[User, Depends(require_role("viewer"))]
Op = Annotated[User, Depends(require_role("op"))]
Admin = Annotated[User, Depends(require_role("admin"))]

#: Airflow's default page size; a page is never larger than ``MAX_LIMIT``
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dag_id_of(value: str) -> str:
    """A DAG id from a path: 400 (naming the rule) unless it is a legal id."""
    return validate_id("dag_id", value)


def run_id_of(value: str) -> str:
    return validate_run_id(value)


def task_id_of(value: str) -> str:
    return validate_id("task_id", value)


def order_key(value: str, known: Collection[str]) -> str:
    """An ``order_by`` value (a leading ``-`` for descending) checked against ``known``."""
    if value.removeprefix("-") not in known:
        raise HTTPException(400, f"cannot order by {value!r}; valid: {sorted(known)}")
    return value


def state_of(stored: str) -> str | None:
    """A task-instance state as Airflow's API writes it: ``none`` is null."""
    return None if stored == "none" else stored
