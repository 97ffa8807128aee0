"""Every error mlpipe raises on purpose.

The hierarchy::

    MlpipeError
    ├── DagDefinitionError            a DAG or task is defined wrongly (raised while authoring)
    │   ├── CycleError                    the dependencies form a loop; ``.cycle`` lists it
    │   ├── DuplicateTaskIdError          two tasks of one DAG share an id
    │   ├── InvalidTaskIdError            a task or group id has illegal characters
    │   ├── InvalidTriggerRuleError       an unknown trigger rule
    │   ├── InvalidOperatorArgumentError  an operator got an argument it does not take
    │   ├── MappingError                  ``.expand()`` got something it cannot map over
    │   ├── TaskAlreadyInDagError         one task object used in two DAGs
    │   ├── TaskOutsideDagError           a ``@task`` called with no DAG around it
    │   └── ParamValidationError          a ``Param`` default or a run's conf fails its schema
    ├── DagNotFoundError                  no DAG with that id in the dags folder
    ├── TaskNotFoundError                 no task with that id in the DAG
    ├── DagImportError                    a DAG file failed to import
    ├── SettingsError                     a setting has a value that cannot be used
    ├── StoreError                        the metadata database cannot be used as asked
    │   ├── RunNotFoundError                  no DAG run with that id
    │   └── RunExistsError                    a DAG run with that id exists already
    └── TaskError                         raised inside a running task instance
        ├── TaskTimeoutError                  ``execution_timeout`` ran out
        ├── XComError                         a value cannot be stored or found as XCom
        ├── TemplateRenderError               a Jinja template failed to render
        └── TaskSkipped                       a task asks to be marked skipped (like Airflow's)

Messages name the offender, list the valid options sorted, and say how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = [
    "CycleError",
    "DagDefinitionError",
    "DagImportError",
    "DagNotFoundError",
    "DuplicateTaskIdError",
    "InvalidOperatorArgumentError",
    "InvalidTaskIdError",
    "InvalidTriggerRuleError",
    "MappingError",
    "MlpipeError",
    "ParamValidationError",
    "RunExistsError",
    "RunNotFoundError",
    "SettingsError",
    "StoreError",
    "TaskAlreadyInDagError",
    "TaskError",
    "TaskNotFoundError",
    "TaskOutsideDagError",
    "TaskSkipped",
    "TaskTimeoutError",
    "TemplateRenderError",
    "XComError",
    "did_you_mean",
]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class MlpipeError(Exception):
    """Root of every error mlpipe raises on purpose."""


class DagDefinitionError(MlpipeError):
    """A DAG, task, group or parameter is defined wrongly."""


class CycleError(DagDefinitionError):
    """The task dependencies form a loop."""

    def __init__(self, dag_id: str, cycle: Sequence[str]) -> None:
        self.dag_id = dag_id
        self.cycle = list(cycle)
        loop = " -> ".join(self.cycle)
        super().__init__(
            f"DAG {dag_id!r} has a cycle: {loop}; remove one of these dependencies"
        )


class DuplicateTaskIdError(DagDefinitionError):
    """Two tasks of one DAG have the same task_id."""

    def __init__(self, dag_id: str, task_id: str) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        super().__init__(
            f"DAG {dag_id!r} already has a task {task_id!r}; give each task a unique task_id "
            "(or use .override(task_id=...) when calling a @task twice)"
        )


class InvalidTaskIdError(DagDefinitionError):
    """A task, group or DAG id has characters that are not allowed."""

    def __init__(self, kind: str, value: object, rule: str) -> None:
        self.value = value
        super().__init__(f"invalid {kind} {value!r}: {rule}")


class InvalidTriggerRuleError(DagDefinitionError):
    """A trigger rule that does not exist."""

    def __init__(self, task_id: str, rule: object, valid: Iterable[str]) -> None:
        self.task_id = task_id
        self.rule = rule
        options = sorted(valid)
        super().__init__(
            f"task {task_id!r} has unknown trigger_rule {rule!r}; valid: {options}"
            + did_you_mean(str(rule), options)
        )


class InvalidOperatorArgumentError(DagDefinitionError):
    """An operator was given an argument it does not accept."""

    def __init__(self, operator: str, task_id: object, names: Iterable[str],
                 valid: Iterable[str]) -> None:
        self.operator = operator
        self.task_id = task_id
        self.names = sorted(names)
        options = sorted(valid)
        hint = "".join(did_you_mean(n, options) for n in self.names)
        super().__init__(
            f"{operator}(task_id={task_id!r}) got unknown argument(s) {self.names}; "
            f"valid: {options}{hint}"
        )


class MappingError(DagDefinitionError):
    """``.expand()`` was given something that cannot be mapped over."""


class TaskAlreadyInDagError(DagDefinitionError):
    """One task object was attached to two DAGs."""

    def __init__(self, task_id: str, current: str, other: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"task {task_id!r} already belongs to DAG {current!r} and cannot be added to "
            f"DAG {other!r}; create a separate task for each DAG"
        )


class TaskOutsideDagError(DagDefinitionError):
    """A ``@task`` function (or operator needing a DAG) was called with no DAG around it."""


class ParamValidationError(DagDefinitionError):
    """A Param's default, or the value a run supplies for it, fails its schema."""


class DagNotFoundError(MlpipeError):
    """No DAG has the requested id."""

    def __init__(self, dag_id: str, known: Iterable[str]) -> None:
        self.dag_id = dag_id
        options = sorted(known)
        super().__init__(
            f"DAG {dag_id!r} not found; known: {options}" + did_you_mean(dag_id, options)
        )


class TaskNotFoundError(MlpipeError):
    """No task of a DAG has the requested id."""

    def __init__(self, dag_id: str, task_id: str, known: Iterable[str]) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        options = sorted(known)
        super().__init__(
            f"DAG {dag_id!r} has no task {task_id!r}; known: {options}"
            + did_you_mean(task_id, options)
        )


class DagImportError(MlpipeError):
    """A DAG file raised while it was imported."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


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
