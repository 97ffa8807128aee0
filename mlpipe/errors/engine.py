"""Errors of the engine: settings, the metadata store, and a task instance while it runs."""

from __future__ import annotations

from collections.abc import Iterable

from mlpipe.errors.base import MlpipeError


class SettingsError(MlpipeError):
    """A setting has a value that cannot be used."""


class StoreError(MlpipeError):
    """The metadata database cannot be reached, is not migrated, or refuses a change."""


class RunNotFoundError(StoreError):
    """No DAG run has the requested id."""

    def __init__(self, dag_id: str, run_id: str, known: Iterable[str] = ()) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        recent = list(known)[-5:]  # callers pass runs oldest first
        super().__init__(
            f"DAG {dag_id!r} has no run {run_id!r}"
            + (f"; recent runs: {recent}" if recent else "; it has no runs yet")
        )


class RunExistsError(StoreError):
    """A DAG run with the same id exists already."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        super().__init__(f"DAG {dag_id!r} already has a run {run_id!r}; pick another --run-id")


class TaskError(MlpipeError):
    """Raised while a task instance runs; stored with the task instance."""


class TaskTimeoutError(TaskError):
    """The task ran longer than its ``execution_timeout``."""


class XComError(TaskError):
    """A value cannot be stored as XCom, or a pulled XCom does not exist."""


class TemplateRenderError(TaskError):
    """A templated field failed to render (for example an undefined name)."""


class TaskSkipped(TaskError):
    """Raise inside ``execute`` to end the task instance as skipped."""


class ExpansionError(TaskError):
    """A mapped task's input is not a list."""


class ArtifactNotRecordedError(MlpipeError):
    """No task recorded an artifact at that URI."""


class UserError(StoreError):
    """A web user cannot be created, found or used as asked; ``.name`` names the user."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        self.name = name
        super().__init__(message)
