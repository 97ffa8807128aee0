"""``ExternalTaskSensor``: waits for a task (or a whole run) of another DAG."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from mlpipe.core.operator import Context
from mlpipe.core.states import DagRunState, TaskInstanceState
from mlpipe.errors import DagDefinitionError, TaskError, TaskSkipped
from mlpipe.sensors.base import BaseSensorOperator, log

DateFn = Callable[..., datetime]


class ExternalTaskSensor(BaseSensorOperator):
    """Done when ``external_task_id`` of ``external_dag_id`` (or, without a task id, that
    DAG's run) is in one of ``allowed_states``, in the run at the same logical date
    (``execution_delta`` earlier, or the date ``execution_date_fn(logical_date)`` returns).

    A state in ``failed_states`` fails the sensor at once (skips it with ``soft_fail``).
    """

    def __init__(self, task_id: str, *, external_dag_id: str,
                 external_task_id: str | None = None,
                 allowed_states: Iterable[str] = ("success",),
                 failed_states: Iterable[str] | None = None,
                 execution_delta: timedelta | None = None,
                 execution_date_fn: DateFn | None = None, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not isinstance(external_dag_id, str) or not external_dag_id:
            raise DagDefinitionError(f"sensor {self.task_id!r}: external_dag_id must be a "
                                     f"DAG id, got {external_dag_id!r}")
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(f"sensor {self.task_id!r}: pass execution_delta or "
                                     "execution_date_fn, not both")
        if execution_delta is not None and not isinstance(execution_delta, timedelta):
            raise DagDefinitionError(f"sensor {self.task_id!r}: execution_delta must be a "
                                     f"timedelta, got {execution_delta!r}")
        known = ({s.value for s in TaskInstanceState} if external_task_id
                 else {s.value for s in DagRunState})
        self.allowed_states = _states(self.task_id, "allowed_states", allowed_states, known)
        self.failed_states = _states(self.task_id, "failed_states", failed_states or (), known)
        both = set(self.allowed_states) & set(self.failed_states)
        if both:
            raise DagDefinitionError(f"sensor {self.task_id!r}: {sorted(both)} are in both "
                                     "allowed_states and failed_states")
        if not self.allowed_states:
            raise DagDefinitionError(f"sensor {self.task_id!r}: allowed_states is empty")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn

    def target_date(self, context: Context) -> datetime:
        logical: datetime = context["logical_date"]
        if self.execution_delta is not None:
            return logical - self.execution_delta
        if self.execution_date_fn is not None:
            from mlpipe.operators.python import determine_kwargs

            kwargs = determine_kwargs(self.execution_date_fn, [logical], {}, context)
            return self.execution_date_fn(logical, **kwargs)
        return logical

    def poke(self, context: Context) -> bool:
        when = self.target_date(context)
        what = (f"{self.external_dag_id}.{self.external_task_id}" if self.external_task_id
                else f"DAG {self.external_dag_id}")
        states = context["dag_run"].store.external_states(self.external_dag_id, when,
                                                          self.external_task_id)
        if not states:
            log.info("%s: %s has no run (or no such task) at %s yet", self.task_id, what,
                     when.isoformat())
            return False
        failed = sorted({s for s in states if s in self.failed_states})
        if failed:
            message = f"{what} at {when.isoformat()} is {failed[0]} (failed_states)"
            if self.soft_fail:
                raise TaskSkipped(message + "; soft_fail: skipped")
            raise TaskError(message)
        log.info("%s: %s at %s is %s", self.task_id, what, when.isoformat(), sorted(set(states)))
        return all(s in self.allowed_states for s in states)


def _states(task_id: str, name: str, states: Iterable[str], known: set[str]) -> tuple[str, ...]:
    values = (states,) if isinstance(states, str) else tuple(states)
    unknown = sorted(str(s) for s in values if s not in known)
    if unknown:
        raise DagDefinitionError(f"sensor {task_id!r}: {name} has unknown states {unknown}; "
                                 f"known: {sorted(known)}")
    return tuple(str(s) for s in values)
