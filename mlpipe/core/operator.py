"""``BaseOperator``: what every task is, and how its arguments are checked and defaulted."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from mlpipe.core import authoring_context as ctx
from mlpipe.core.datasets import Dataset
from mlpipe.core.dependencies import DependencyMixin
from mlpipe.core.ids import validate_id
from mlpipe.core.trigger_rule import TriggerRule
from mlpipe.core.xcom_arg import MappedArgument, XComArg, find_references
from mlpipe.errors import (
    CycleError,
    DagDefinitionError,
    InvalidDatasetError,
    InvalidOperatorArgumentError,
    InvalidTriggerRuleError,
)

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.core.mapping import OperatorPartial
    from mlpipe.core.task_group import TaskGroup

Context = dict[str, Any]
Callback = Callable[[Context], object]

_accepted_cache: dict[type, tuple[frozenset[str], bool]] = {}


def accepted_arguments(cls: type) -> tuple[frozenset[str], bool]:
    """Keyword arguments the constructors along ``cls``'s MRO accept, and if any is open."""
    cached = _accepted_cache.get(cls)
    if cached is not None:
        return cached
    names: set[str] = set()
    open_ended = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(
            p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        )
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            open_ended = False
            break
    result = (frozenset(names), open_ended)
    _accepted_cache[cls] = result
    return result


def apply_defaults(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check ``kwargs`` against ``cls`` and fill in the DAG's and group's ``default_args``."""
    accepted, open_ended = accepted_arguments(cls)
    if not open_ended:
        unknown = set(kwargs) - accepted - {"default_args"}
        if unknown:
            raise InvalidOperatorArgumentError(
                cls.__name__, kwargs.get("task_id"), unknown, accepted
            )
    dag = kwargs.get("dag") or ctx.current_dag()
    group = kwargs.get("task_group") or ctx.current_group()
    defaults: dict[str, Any] = {}
    if dag is not None:
        defaults.update(dag.default_args)
    if group is not None:
        defaults.update(group.inherited_default_args())
    defaults.update(kwargs.pop("default_args", None) or {})
    merged = dict(kwargs)
    for name, value in defaults.items():
        if name in accepted and name not in merged:
            merged[name] = value
    if "params" in defaults and "params" in kwargs and isinstance(defaults["params"], dict):
        merged["params"] = {**defaults["params"], **(kwargs["params"] or {})}
    return merged


class OperatorMeta(type):
    """Checks arguments and applies ``default_args`` before ``__init__``; registers after."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs = apply_defaults(cls, kwargs)
        op = super().__call__(*args, **kwargs)
        op._attach()
        return op


class BaseOperator(DependencyMixin, metaclass=OperatorMeta):
    """A task: one unit of work in a DAG. Subclasses implement ``execute(context)``.

    The return value of ``execute`` is pushed as the XCom ``return_value``. Attributes named
    in ``template_fields`` are rendered with Jinja (and XComArgs in them resolved) first.
    """

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    ui_color: ClassVar[str] = "#fff"
    #: Bumped by an operator when its behaviour changes (part of cache keys later on).
    operator_version: ClassVar[str] = "1"

    def __init__(
        self,
        task_id: str,
        *,
        owner: str = "mlpipe",
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(minutes=5),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        execution_timeout: timedelta | float | None = None,
        trigger_rule: str | TriggerRule = TriggerRule.ALL_SUCCESS,
        depends_on_past: bool = False,
        pool: str | None = None,
        priority_weight: int = 1,
        resources: Mapping[str, float] | None = None,
        on_success_callback: Callback | Sequence[Callback] | None = None,
        on_failure_callback: Callback | Sequence[Callback] | None = None,
        on_retry_callback: Callback | Sequence[Callback] | None = None,
        params: Mapping[str, Any] | None = None,
        doc_md: str | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        cache: bool = False,
        sla: timedelta | float | None = None,
        outlets: Iterable[Dataset] | Dataset = (),
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        queue: str = "default",
    ) -> None:
        validate_id("task_id", task_id)
        group = task_group or (ctx.current_group() if dag is None else None)
        if group is None and dag is not None:
            group = dag.task_group
        self.task_group: TaskGroup | None = group
        self.task_id = group.child_id(task_id) if group is not None else task_id
        self.owner = owner
        self.retries = _non_negative_int(self.task_id, "retries", retries)
        self.retry_delay = _as_timedelta(retry_delay)
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = _as_timedelta(max_retry_delay) if max_retry_delay else None
        self.execution_timeout = _as_timedelta(execution_timeout) if execution_timeout else None
        try:
            self.trigger_rule = TriggerRule(trigger_rule)
        except ValueError:
            raise InvalidTriggerRuleError(
                self.task_id, trigger_rule, [r.value for r in TriggerRule]
            ) from None
        self.depends_on_past = depends_on_past
        self.pool = pool
        self.priority_weight = priority_weight
        self.resources = dict(resources or {})
        #: the Celery queue whose workers run this task (``mlpipe worker -q``)
        self.queue = _queue_name(self.task_id, queue)
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.on_retry_callback = on_retry_callback
        self.params = dict(params or {})
        self.doc_md = doc_md
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        #: reuse recorded outputs when operator, arguments and input artifacts are unchanged
        self.cache = cache
        #: the task should have succeeded this long after its run's data interval ended
        self.sla = _positive_duration(self.task_id, "sla", sla) if sla is not None else None
        #: datasets this task updates: each gets an event when a try succeeds
        self.outlets: list[Dataset] = _outlets(self.task_id, outlets)
        self._dag: DAG | None = dag if dag is not None else ctx.current_dag()
        self._upstream: dict[str, BaseOperator] = {}
        self._downstream: dict[str, BaseOperator] = {}

    # -- identity and DAG membership -------------------------------------------------

    is_mapped: ClassVar[bool] = False

    @property
    def task_type(self) -> str:
        """The operator's class name, as shown in listings."""
        return type(self).__name__

    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if self._dag is not None and self._dag is not dag:
            from mlpipe.errors import TaskAlreadyInDagError

            raise TaskAlreadyInDagError(self.task_id, self._dag.dag_id, dag.dag_id)
        self._dag = dag
        dag.add_task(self)

    def _attach(self) -> None:
        """Register with the DAG and group, and depend on every XComArg in the arguments."""
        if self.task_group is not None and self.task_group.dag is not None and self._dag is None:
            self._dag = self.task_group.dag
        if self._dag is not None:
            self._dag.add_task(self)
        if self.task_group is not None:
            self.task_group.add(self)
        for ref in find_references([getattr(self, f, None) for f in self._reference_fields()]):
            self._depend_on_reference(ref)

    def _reference_fields(self) -> Iterable[str]:
        return self.template_fields

    def _depend_on_reference(self, ref: XComArg | MappedArgument) -> None:
        if isinstance(ref, XComArg):
            if ref.operator is not self:
                ref.operator.set_downstream(self)
        else:
            for producer in ref.group.expand_producers():
                producer.set_downstream(self)

    @property
    def output(self) -> XComArg:
        """This task's ``return_value`` as an XComArg."""
        return XComArg(self)

    # -- dependencies ----------

    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    @property
    def upstream_task_ids(self) -> set[str]:
        return set(self._upstream)

    @property
    def downstream_task_ids(self) -> set[str]:
        return set(self._downstream)

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return list(self._upstream.values())

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return list(self._downstream.values())

    def _add_edge_to(self, other: BaseOperator) -> None:
        if other.task_id in self._downstream:
            return
        self._join_dags(other)
        path = _path_between(other, self)
        if path is not None:
            dag_id = self._dag.dag_id if self._dag else "<no dag>"
            raise CycleError(dag_id, [self.task_id, *[t.task_id for t in path]])
        self._downstream[other.task_id] = other
        other._upstream[self.task_id] = self

    def _join_dags(self, other: BaseOperator) -> None:
        if self._dag is not None and other._dag is not None and self._dag is not other._dag:
            raise DagDefinitionError(
                f"cannot make {self.task_id!r} (DAG {self._dag.dag_id!r}) upstream of "
                f"{other.task_id!r} (DAG {other._dag.dag_id!r}): tasks of different DAGs "
                "cannot depend on each other"
            )
        if self._dag is None and other._dag is not None:
            self.dag = other._dag
        elif other._dag is None and self._dag is not None:
            other.dag = self._dag

    def get_direct_relatives(self, upstream: bool = False) -> list[BaseOperator]:
        return self.upstream_list if upstream else self.downstream_list

    def get_descendants(self) -> list[BaseOperator]:
        """Every task that runs after this one, breadth first."""
        seen: dict[str, BaseOperator] = {}
        frontier = list(self._downstream.values())
        while frontier:
            task = frontier.pop(0)
            if task.task_id not in seen:
                seen[task.task_id] = task
                frontier.extend(task._downstream.values())
        return list(seen.values())

    # -- execution ----------

    def execute(self, context: Context) -> Any:
        """Do the work; the return value becomes the XCom ``return_value``."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def downstream_to_skip(self, result: Any, context: Context) -> Collection[str]:
        """Task ids to mark skipped after a successful ``execute`` (branching operators)."""
        return ()

    # -- mapping ----------

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """Fix some arguments; ``.expand(...)`` then maps over the others."""
        from mlpipe.core.mapping import OperatorPartial

        return OperatorPartial(cls, kwargs)

    def __repr__(self) -> str:
        return f"<Task({self.task_type}): {self.task_id}>"


def _path_between(start: BaseOperator, goal: BaseOperator) -> list[BaseOperator] | None:
    """A downstream path ``start -> ... -> goal`` if there is one (depth first)."""
    if start is goal:
        return [goal]
    parents: dict[str, BaseOperator | None] = {start.task_id: None}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in node._downstream.values():
            if nxt.task_id in parents:
                continue
            parents[nxt.task_id] = node
            if nxt is goal:
                path = [nxt]
                back: BaseOperator | None = node
                while back is not None:
                    path.append(back)
                    back = parents[back.task_id]
                return path[::-1]
            stack.append(nxt)
    return None


def _as_timedelta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def _positive_duration(task_id: str, name: str, value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise DagDefinitionError(f"task {task_id!r}: {name} must be a timedelta or seconds, "
                                 f"got {value!r}")
    delta = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    if not delta > timedelta(0):
        raise DagDefinitionError(f"task {task_id!r}: {name} must be > 0, got {value!r}")
    return delta


def _non_negative_int(task_id: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DagDefinitionError(f"task {task_id!r}: {name} must be a whole number >= 0, "
                                 f"got {value!r}")
    return value


def _outlets(task_id: str, outlets: Iterable[Dataset] | Dataset | None) -> list[Dataset]:
    """``outlets=`` as a list of datasets, each once; anything else names the task."""
    if outlets is None:
        return []
    items = [outlets] if isinstance(outlets, Dataset) else outlets
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidDatasetError(outlets, f"task {task_id!r}: outlets must be a list of "
                                           "Dataset objects")
    found = list(items)
    for item in found:
        if not isinstance(item, Dataset):
            raise InvalidDatasetError(item, f"task {task_id!r}: outlets must hold Dataset "
                                            f"objects, got {type(item).__name__}; wrap a URI "
                                            "in Dataset(...)")
    return list(dict.fromkeys(found))


def _queue_name(task_id: str, queue: str) -> str:
    """``queue=``: letters, digits, ``_``, ``.``, ``-`` (what every broker accepts)."""
    if not isinstance(queue, str) or not 0 < len(queue) <= 100 or \
            not all(c.isalnum() or c in "_.-" for c in queue) or not queue.isascii():
        raise DagDefinitionError(
            f"task {task_id!r}: queue {queue!r} must be 1-100 letters, digits, '_', '.' or '-'")
    return queue
