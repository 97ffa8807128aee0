"""``DAG`` and ``@dag``: a set of tasks, their dependencies and how often they run."""

from __future__ import annotations

import functools
import graphlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlpipe.core import authoring_context as ctx
from mlpipe.core.engine_port import TestedRun, dag_tester
from mlpipe.core.ids import validate_id
from mlpipe.core.operator import BaseOperator
from mlpipe.core.params import Param, check_defaults
from mlpipe.core.task_group import TaskGroup
from mlpipe.core.timetables import Timetable, make_timetable
from mlpipe.core.xcom_arg import DagParam
from mlpipe.errors import (
    CycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    ScheduleError,
    TaskAlreadyInDagError,
    TaskNotFoundError,
)

DagCallback = Callable[[dict[str, Any]], object]


class DAG:
    """A pipeline: tasks, their dependencies, parameters and schedule.

    Use it as a context manager (``with DAG("etl") as dag: ...``) or pass ``dag=`` to
    operators. ``default_args`` apply to every task unless a task sets the argument itself.
    """

    def __init__(
        self,
        dag_id: str,
        *,
        schedule: Any = None,
        schedule_interval: Any = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool = False,
        default_args: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        dagrun_timeout: timedelta | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
        doc_md: str | None = None,
        template_searchpath: str | Sequence[str] | None = None,
        on_success_callback: DagCallback | Sequence[DagCallback] | None = None,
        on_failure_callback: DagCallback | Sequence[DagCallback] | None = None,
        deadline: timedelta | None = None,
        on_sla_miss_callback: DagCallback | Sequence[DagCallback] | None = None,
        is_paused_upon_creation: bool | None = None,
        fileloc: str | None = None,
    ) -> None:
        self.dag_id = validate_id("dag_id", dag_id)
        if schedule is not None and schedule_interval is not None:
            raise DagDefinitionError(
                f"DAG {dag_id!r}: pass schedule or schedule_interval, not both"
            )
        self.schedule = schedule if schedule is not None else schedule_interval
        self.start_date = _aware(start_date)
        try:
            self.timetable: Timetable = make_timetable(self.schedule,
                                                       start_date=self.start_date)
        except ScheduleError as exc:
            raise ScheduleError(f"DAG {dag_id!r}: {exc}") from None
        self.end_date = _aware(end_date)
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DagDefinitionError(
                f"DAG {dag_id!r}: end_date {self.end_date.isoformat()} is before start_date "
                f"{self.start_date.isoformat()}"
            )
        self.catchup = catchup
        self.default_args = dict(default_args or {})
        self.params: dict[str, Any] = {**self.default_args.get("params", {}), **(params or {})}
        check_defaults(self.params)
        self.max_active_runs = max_active_runs
        #: paused when the scheduler first records it (None: MLPIPE_DAGS_PAUSED_AT_CREATION)
        self.is_paused_upon_creation = is_paused_upon_creation
        self.max_active_tasks = max_active_tasks
        self.dagrun_timeout = dagrun_timeout
        self.tags = list(tags)
        self.description = description
        self.doc_md = doc_md
        if isinstance(template_searchpath, str):
            template_searchpath = [template_searchpath]
        self.template_searchpath = list(template_searchpath or [])
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        if deadline is not None and (not isinstance(deadline, timedelta)
                                     or deadline <= timedelta(0)):
            raise DagDefinitionError(f"DAG {dag_id!r}: deadline must be a timedelta > 0, "
                                     f"got {deadline!r}")
        #: a run should finish this long after it started (checked by the scheduler)
        self.deadline = deadline
        #: called once per missed task ``sla`` or run ``deadline``
        self.on_sla_miss_callback = on_sla_miss_callback
        self.fileloc = fileloc or sys._getframe(1).f_code.co_filename
        self.task_dict: dict[str, BaseOperator] = {}
        self.task_group = TaskGroup(None, dag=self)

    # -- building ----------

    def __enter__(self) -> DAG:
        ctx.push_dag(self)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        ctx.pop_dag()
        if exc_type is None:
            ctx.register_dag(self)

    def add_task(self, task: BaseOperator) -> None:
        """Add ``task``; its id must be unique and it must not belong to another DAG."""
        if task.dag is not None and task.dag is not self:
            raise TaskAlreadyInDagError(task.task_id, task.dag.dag_id, self.dag_id)
        existing = self.task_dict.get(task.task_id)
        if existing is task:
            return
        if existing is not None or task.task_id in self.task_group.used_group_ids:
            raise DuplicateTaskIdError(self.dag_id, task.task_id)
        task._dag = self
        self.task_dict[task.task_id] = task
        if task.task_group is None:
            task.task_group = self.task_group
            self.task_group.add(task)

    def add_tasks(self, tasks: Iterable[BaseOperator]) -> None:
        for task in tasks:
            self.add_task(task)

    # -- reading ----------

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFoundError(self.dag_id, task_id, self.task_dict) from None

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks with every task after all of its upstream tasks; raises on a cycle."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
            {tid: t.upstream_task_ids for tid, t in self.task_dict.items()}
        )
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            loop = list(reversed(exc.args[1]))
            raise CycleError(self.dag_id, loop) from None
        return [self.task_dict[tid] for tid in order]

    def validate(self) -> None:
        """Check the whole DAG: dependencies on unknown tasks, cycles, parameter defaults."""
        for task in self.task_dict.values():
            for other in (*task.upstream_task_ids, *task.downstream_task_ids):
                if other not in self.task_dict:
                    raise DagDefinitionError(
                        f"task {task.task_id!r} of DAG {self.dag_id!r} is linked to "
                        f"{other!r}, which is not in the DAG"
                    )
        self.topological_sort()
        check_defaults(self.params)

    @property
    def folder(self) -> Path:
        return Path(self.fileloc).resolve().parent

    def param(self, name: str, default: Any = None) -> DagParam:
        """A reference to ``params[name]`` that resolves when a task runs."""
        return DagParam(name, default)

    # -- running ----------

    def test(
        self,
        logical_date: datetime | str | None = None,
        conf: Mapping[str, Any] | None = None,
        *,
        skip_retry_delays: bool = False,
    ) -> TestedRun:
        """Run every task in this process and return the finished ``DagRun``.

        Task failures do not raise: read ``run.state`` and each task instance's ``state``
        and ``log``. Retry delays are waited out for real unless ``skip_retry_delays``.
        The engine that runs it is installed through ``core.engine_port`` (the core never
        imports the engine).
        """
        return dag_tester()(self, logical_date=logical_date, conf=conf,
                            skip_retry_delays=skip_retry_delays)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise DagDefinitionError(f"expected a datetime, got {type(value).__name__} {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def dag(dag_id: Any = None, **dag_kwargs: Any) -> Any:
    """Decorate a function that builds a DAG; calling the function returns the ``DAG``.

    ``dag_id`` defaults to the function's name. Arguments of the function with defaults
    become DAG params; inside the function they are references resolved at run time.
    """
    if callable(dag_id):
        return _DagFactory(dag_id, None, dag_kwargs)
    return lambda fn: _DagFactory(fn, dag_id, dag_kwargs)


class _DagFactory:
    def __init__(self, function: Callable[..., Any], dag_id: str | None,
                 dag_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.dag_id = dag_id or function.__name__
        self.dag_kwargs = dag_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> DAG:
        signature = inspect.signature(self.function)
        bound = signature.bind_partial(*args, **kwargs)
        dag_kwargs = dict(self.dag_kwargs)
        params: dict[str, Any] = dict(dag_kwargs.pop("params", None) or {})
        call_args: dict[str, Any] = {}
        for name, parameter in signature.parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if name in bound.arguments:
                value = bound.arguments[name]
            elif parameter.default is not parameter.empty:
                value = parameter.default
            else:
                raise DagDefinitionError(
                    f"@dag function {self.function.__name__!r} needs a default for its "
                    f"argument {name!r}: arguments become DAG params"
                )
            if name not in params:
                params[name] = value
            default = params[name].value if isinstance(params[name], Param) else params[name]
            call_args[name] = DagParam(name, default)
        fileloc = self.function.__code__.co_filename
        with DAG(self.dag_id, fileloc=fileloc, params=params, **dag_kwargs) as built:
            self.function(**call_args)
        return built
