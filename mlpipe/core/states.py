"""States of task instances and DAG runs, as Airflow names them."""

from __future__ import annotations

from enum import StrEnum


class TaskInstanceState(StrEnum):
    """The state of one try-able unit of work (a task, or one mapped instance of it)."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"
    REMOVED = "removed"
    #: a sensor in ``mode="reschedule"`` waits for its next poke without holding a slot
    UP_FOR_RESCHEDULE = "up_for_reschedule"

    @property
    def finished(self) -> bool:
        """True for states a task instance never leaves on its own."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.FAILED,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.REMOVED,
    }
)


class DagRunState(StrEnum):
    """The state of one run of a DAG."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
