"""``dag.test()``: run a whole DAG in this process and return the finished run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.params import resolve_params
from mlpipe.errors import DagDefinitionError
from mlpipe.runtime.engine import RunEngine
from mlpipe.runtime.models import DagRun
from mlpipe.settings import load_settings


def parse_logical_date(value: datetime | str | None) -> datetime:
    """A run's logical date: now, a datetime (naive means UTC) or an ISO 8601 string."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DagDefinitionError(
                f"logical date {value!r} is not an ISO 8601 date or datetime "
                "(for example 2024-01-31 or 2024-01-31T02:00:00+00:00)"
            ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_run(dag: DAG, *, logical_date: datetime, conf: Mapping[str, Any] | None,
            run_type: str = "manual", run_id: str | None = None,
            xcom_max_bytes: int = 48 * 1024) -> DagRun:
    """A queued run of ``dag`` with validated params (``conf`` overrides them)."""
    if conf is not None and not isinstance(conf, Mapping):
        raise DagDefinitionError(f"conf must be a JSON object (a dict), got {type(conf).__name__}")
    conf = dict(conf or {})
    params = resolve_params(dag.params, conf)
    return DagRun(
        dag_id=dag.dag_id,
        run_id=run_id or f"{run_type}__{logical_date.isoformat()}",
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        conf=conf,
        run_type=run_type,
        dag=dag,
        params=params,
        xcom_max_bytes=xcom_max_bytes,
    )


def test_dag(dag: DAG, *, logical_date: datetime | str | None = None,
             conf: Mapping[str, Any] | None = None, skip_retry_delays: bool = False) -> DagRun:
    """Validate ``dag``, run it to the end in this process, and return the run."""
    dag.validate()
    settings = load_settings()
    run = new_run(dag, logical_date=parse_logical_date(logical_date), conf=conf,
                  xcom_max_bytes=settings.xcom_max_bytes)
    return RunEngine(run, skip_retry_delays=skip_retry_delays).execute()
