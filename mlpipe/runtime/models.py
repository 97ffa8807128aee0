"""Runtime entities: a DAG run and its task instances, with their XComs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlpipe.core.serde import deserialize, serialize
from mlpipe.core.states import DagRunState, TaskInstanceState
from mlpipe.core.xcom_arg import RETURN_VALUE
from mlpipe.errors import XComError

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.core.planning import RunPlanner

XComKey = tuple[str, int, str]  # task_id, map_index, key


@dataclass(eq=False)
class DagRun:
    """One run of a DAG: its dates, conf, state and task instances."""

    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    conf: dict[str, Any]
    run_type: str = "manual"
    state: DagRunState = DagRunState.QUEUED
    start_date: datetime | None = None
    end_date: datetime | None = None
    dag: DAG | None = field(default=None, repr=False)
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    xcom_max_bytes: int = 48 * 1024
    _tis: dict[tuple[str, int], TaskInstance] = field(default_factory=dict, repr=False)
    _xcoms: dict[XComKey, str] = field(default_factory=dict, repr=False)
    planner: RunPlanner | None = field(default=None, repr=False)
    #: resolved ``.expand()`` inputs, by mapped task id or mapped group id
    expansions: dict[str, dict[str, list[Any]]] = field(default_factory=dict, repr=False)

    # -- task instances ----------

    @property
    def task_instances(self) -> list[TaskInstance]:
        """Every task instance, in the DAG's topological order, then by map index."""
        order = {t.task_id: i for i, t in enumerate(self.dag.topological_sort())} if self.dag \
            else {}
        return sorted(self._tis.values(),
                      key=lambda ti: (order.get(ti.task_id, 0), ti.map_index))

    def get_task_instance(self, task_id: str, map_index: int = -1) -> TaskInstance | None:
        """The task instance, or None if it was never created (mapped, not expanded)."""
        return self._tis.get((task_id, map_index))

    def ensure_ti(self, task_id: str, map_index: int, operator: str = "",
                  max_tries: int = 0) -> TaskInstance:
        ti = self._tis.get((task_id, map_index))
        if ti is None:
            ti = TaskInstance(self.dag_id, task_id, self.run_id, map_index, operator=operator,
                              max_tries=max_tries, run=self)
            self._tis[(task_id, map_index)] = ti
        return ti

    def drop_ti(self, task_id: str, map_index: int) -> None:
        self._tis.pop((task_id, map_index), None)

    # -- XCom -------------------------------------------------------------------------------

    def push_xcom(self, task_id: str, map_index: int, key: str, value: Any) -> None:
        where = f"XCom {key!r} of task {task_id!r}"
        if map_index >= 0:
            where += f" (map_index {map_index})"
        self._xcoms[(task_id, map_index, key)] = serialize(
            value, what=where, max_bytes=self.xcom_max_bytes
        )

    def has_xcom(self, task_id: str, map_index: int, key: str) -> bool:
        return (task_id, map_index, key) in self._xcoms

    def get_xcom(self, task_id: str, map_index: int, key: str, default: Any = None) -> Any:
        text = self._xcoms.get((task_id, map_index, key))
        return default if text is None else deserialize(text)

    def pull(self, task_id: str, key: str, *, requester: TaskInstance | None,
             map_indexes: int | list[int] | None = None, default: Any = None,
             strict: bool = False) -> Any:
        """The XCom of ``task_id`` as a task instance sees it.

        A mapped task's value is the list of its instances' values (map index order); from
        inside the same mapped group it is the value of the same map index.
        """
        if isinstance(map_indexes, int):
            return self._one(task_id, map_indexes, key, default, strict)
        if isinstance(map_indexes, list):
            return [self._one(task_id, i, key, default, strict) for i in map_indexes]
        planner = self.planner
        node = planner.nodes.get(task_id) if planner is not None else None
        if node is not None and planner is not None:
            if requester is not None and requester.map_index >= 0 and \
                    requester.task_id in planner.nodes and \
                    planner.is_same_group(task_id, requester.task_id):
                return self._one(task_id, requester.map_index, key, default, strict)
            if not node.static and node.count is not None and -1 not in node.states:
                return [self.get_xcom(task_id, i, key) for i in range(node.count)
                        if (task_id, i, key) in self._xcoms]
        if strict and (task_id, -1, key) not in self._xcoms:
            ti = self._tis.get((task_id, -1))
            ended = f" (it ended {ti.state.value})" if ti is not None else ""
            raise XComError(
                f"no XCom {key!r} from task {task_id!r}{ended}; check that it returns a value "
                "(or pushes that key)"
            )
        return self.get_xcom(task_id, -1, key, default)

    def _one(self, task_id: str, map_index: int, key: str, default: Any, strict: bool) -> Any:
        if strict and (task_id, map_index, key) not in self._xcoms:
            raise XComError(f"no XCom {key!r} from task {task_id!r} map_index {map_index}")
        return self.get_xcom(task_id, map_index, key, default)


@dataclass(eq=False)
class TaskInstance:
    """One task (or one mapped instance of it) within a DAG run."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    state: TaskInstanceState = TaskInstanceState.NONE
    try_number: int = 0
    max_tries: int = 0
    operator: str = ""
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: timedelta | None = None
    error: str | None = None
    hostname: str = ""
    run: DagRun | None = field(default=None, repr=False)
    log_parts: list[str] = field(default_factory=list, repr=False)
    logs_by_try: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def log(self) -> str:
        """Everything logged by every try of this task instance."""
        return "".join(self.log_parts)

    def xcom_push(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for downstream tasks."""
        assert self.run is not None
        self.run.push_xcom(self.task_id, self.map_index, key, value)

    def xcom_pull(self, task_ids: str | list[str] | None = None, key: str = RETURN_VALUE,
                  map_indexes: int | list[int] | None = None, default: Any = None) -> Any:
        """Read XCom: one task id gives one value, a list of task ids a list of values."""
        assert self.run is not None
        if task_ids is None:
            task_ids = self.task_id
            if map_indexes is None and self.map_index >= 0:
                map_indexes = self.map_index
        if isinstance(task_ids, str):
            return self.run.pull(task_ids, key, requester=self, map_indexes=map_indexes,
                                 default=default)
        return [self.run.pull(t, key, requester=self, map_indexes=map_indexes, default=default)
                for t in task_ids]

    def __repr__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"<TaskInstance {self.dag_id}.{self.task_id}{index} {self.state.value}>"
