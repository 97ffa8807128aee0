"""Errors of authoring: a DAG, task, group, parameter, schedule or artifact reference
defined wrongly, or a DAG or task that does not exist."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlpipe.errors.base import MlpipeError, did_you_mean


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


class ScheduleError(DagDefinitionError):
    """A schedule that cannot be used (bad cron string, unknown preset...)."""


class InvalidDatasetError(DagDefinitionError, ValueError):
    """A ``Dataset`` (its URI or extra) or a dataset condition that cannot be used."""

    def __init__(self, uri: object, problem: str) -> None:
        self.uri = uri
        shown = repr(uri) if not isinstance(uri, str) or len(uri) <= 200 else \
            repr(uri[:200] + "...")
        super().__init__(f"dataset {shown}: {problem}")


class InvalidArtifactError(MlpipeError, ValueError):
    """An artifact reference or artifact path component has an unusable value."""
