"""``TimeDeltaSensor``: waits until a time after the end of the run's data interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe.core.operator import Context
from mlpipe.errors import DagDefinitionError
from mlpipe.sensors.base import BaseSensorOperator, log


class TimeDeltaSensor(BaseSensorOperator):
    """Done once ``data_interval_end + delta`` has passed (as Airflow's: a daily run whose
    interval ends at midnight, with ``delta=timedelta(hours=2)``, goes on at 02:00)."""

    def __init__(self, task_id: str, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not isinstance(delta, timedelta):
            raise DagDefinitionError(f"sensor {self.task_id!r}: delta must be a timedelta, "
                                     f"got {delta!r}")
        self.delta = delta

    def target(self, context: Context) -> datetime:
        end: datetime = context["data_interval_end"] or context["logical_date"]
        return end + self.delta

    def poke(self, context: Context) -> bool:
        target = self.target(context)
        log.info("%s: waiting until %s", self.task_id, target.isoformat())
        return datetime.now(UTC) >= target
