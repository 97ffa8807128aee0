"""What users get back from a run: ``DagRun`` and ``TaskInstance``, read from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.connections.sealing import SEALED_MARK, seal_secrets, unseal_secrets
from mlpipe.core.params import resolve_params
from mlpipe.core.serde import deserialize, serialize
from mlpipe.core.states import DagRunState, TaskInstanceState
from mlpipe.core.xcom_arg import RETURN_VALUE
from mlpipe.errors import XComError
from mlpipe.store.entities import DagRunRecord, TaskInstanceRecord, TIKey

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.store.protocols import TryStore



@dataclass(eq=False)
class DagRun:
    """One run of a DAG: its dates, conf, state and task instances."""

    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    conf: dict[str, Any]
    run_type: str
    state: DagRunState
    start_date: datetime | None
    end_date: datetime | None
    dag: DAG = field(repr=False)
    store: TryStore = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    xcom_max_bytes: int = 48 * 1024
    keepalive: Any = field(default=None, repr=False)  # e.g. dag.test()'s temporary folder
    #: XComs by (task_id, key) -> {map_index: text}. Authoritative (a miss means "none")
    #: for a run that started empty and is only written through this object (dag.test());
    #: with ``xcom_read_through`` a miss reads the store and is kept (an in-process driver,
    #: whose tries all write through this object; see docs/decisions.md)
    xcom_cache: dict[tuple[str, str], dict[int, str]] | None = field(default=None, repr=False)
    xcom_read_through: bool = field(default=False, repr=False)
    #: what mapped tasks and groups map over, resolved once (``task_runner.instance_values``)
    #: with the tasks it was pulled from; dropped when one of those writes an XCom here
    expansions: dict[str, tuple[frozenset[str], dict[str, list[Any]]]] = field(
        default_factory=dict, repr=False)

    @classmethod
    def from_record(cls, record: DagRunRecord, dag: DAG, store: TryStore, *,
                    params: dict[str, Any] | None = None,
                    xcom_max_bytes: int = 48 * 1024) -> DagRun:
        """The run as tasks see it; ``params`` default to the DAG's, with the run's conf.

        The conf was validated when the run was created (``scheduler.runs.create_dag_run``);
        here it is only merged into the params, the one place a stored run gets them.
        """
        if params is None:
            params = resolve_params(dag.params, record.conf)
        return cls(record.dag_id, record.run_id, record.logical_date,
                   record.data_interval_start, record.data_interval_end, dict(record.conf),
                   record.run_type, DagRunState(record.state), record.start_date,
                   record.end_date, dag, store, params, xcom_max_bytes)

    def refresh(self) -> DagRun:
        record = self.store.get_run(self.dag_id, self.run_id)
        self.state = DagRunState(record.state)
        self.start_date, self.end_date = record.start_date, record.end_date
        return self

    # -- task instances -------------------------------------------------------------------

    @property
    def task_instances(self) -> list[TaskInstance]:
        """Every task instance, in the DAG's topological order, then by map index."""
        order = {t.task_id: i for i, t in enumerate(self.dag.topological_sort())}
        records = self.store.list_tis(self.dag_id, self.run_id)
        tis = [TaskInstance.from_record(r, self) for r in records]
        return sorted(tis, key=lambda ti: (order.get(ti.task_id, 0), ti.map_index))

    def get_task_instance(self, task_id: str, map_index: int = -1) -> TaskInstance | None:
        """The task instance, or None if it does not exist (a mapped task not expanded)."""
        record = self.store.get_ti(TIKey(self.dag_id, self.run_id, task_id, map_index))
        return TaskInstance.from_record(record, self) if record else None

    # -- XCom -------------------------------------------------------------------------------

    def serialize_xcom(self, task_id: str, map_index: int, key: str, value: Any) -> str:
        where = f"XCom {key!r} of task {task_id!r}"
        if map_index >= 0:
            where += f" (map_index {map_index})"
        return serialize(seal_secrets(value), what=where, max_bytes=self.xcom_max_bytes)

    def push_xcom(self, task_id: str, map_index: int, key: str, value: Any) -> None:
        text = self.serialize_xcom(task_id, map_index, key, value)
        self.store.push_xcoms(TIKey(self.dag_id, self.run_id, task_id, map_index), {key: text})
        self.remember_xcoms(task_id, map_index, {key: text})

    def remember_xcoms(self, task_id: str, map_index: int, values: dict[str, str]) -> None:
        """Keep the cache (if any) in step with values just written to the store."""
        if values:
            self._forget_expansions(task_id)
        cache = self.xcom_cache
        if cache is None:
            return
        for key, text in values.items():
            entry = cache.get((task_id, key))
            if entry is not None:
                entry[map_index] = text
            elif map_index < 0 or not self.xcom_read_through:
                # an unmapped task has one instance: its value is the whole entry; a mapped
                # one's other instances may be in the store only, so a read fills the entry
                cache[(task_id, key)] = {map_index: text}

    def forget_xcoms(self, task_id: str, map_index: int) -> None:
        """A new try cleared the instance's XComs in the store."""
        self._forget_expansions(task_id)
        if self.xcom_cache is not None:
            for (cached_task, _), entry in self.xcom_cache.items():
                if cached_task == task_id:
                    entry.pop(map_index, None)

    def _forget_expansions(self, task_id: str) -> None:
        for owner in [o for o, (sources, _) in self.expansions.items() if task_id in sources]:
            del self.expansions[owner]

    def _xcoms(self, task_id: str, key: str) -> dict[int, str]:
        cache = self.xcom_cache
        if cache is None:
            return self.store.get_xcoms(self.dag_id, self.run_id, task_id, key)
        entry = cache.get((task_id, key))
        if entry is None:
            if not self.xcom_read_through:
                return {}
            entry = cache[(task_id, key)] = self.store.get_xcoms(self.dag_id, self.run_id,
                                                                 task_id, key)
        return entry

    def _is_mapped(self, task_id: str) -> bool:
        task = self.dag.task_dict.get(task_id)
        if task is None:
            return False
        group = task.task_group.mapped_group() if task.task_group is not None else None
        return task.is_mapped or group is not None

    def _same_group(self, task_id: str, other_id: str) -> bool:
        a, b = self.dag.task_dict.get(task_id), self.dag.task_dict.get(other_id)
        if a is None or b is None or a.task_group is None or b.task_group is None:
            return False
        group = a.task_group.mapped_group()
        return group is not None and group is b.task_group.mapped_group()

    def pull(self, task_id: str, key: str, *, requester: TaskInstance | None,
             map_indexes: int | list[int] | None = None, default: Any = None,
             strict: bool = False) -> Any:
        """The XCom of ``task_id`` as a task instance sees it.

        A mapped task's value is the list of its instances' values (map index order); from
        inside the same mapped group it is the value of the same map index.
        """
        if map_indexes is None and requester is not None and requester.map_index >= 0 and \
                self._same_group(task_id, requester.task_id):
            map_indexes = requester.map_index
        if isinstance(map_indexes, int | list):
            wanted = [map_indexes] if isinstance(map_indexes, int) else map_indexes
            found = self._xcoms(task_id, key)
            if strict and len(found) < len(wanted):
                raise XComError(f"no XCom {key!r} from task {task_id!r} map_index "
                                f"{[i for i in wanted if i not in found]}")
            values = [load_xcom(found[i]) if i in found else default for i in wanted]
            return values[0] if isinstance(map_indexes, int) else values
        found = self._xcoms(task_id, key)
        if -1 in found:
            return load_xcom(found[-1])
        if self._is_mapped(task_id) and found:
            return [load_xcom(found[i]) for i in sorted(found)]
        if self._is_mapped(task_id) and self._expanded(task_id):
            return []
        if strict:
            ti = self.get_task_instance(task_id)
            ended = f" (it ended {ti.state.value})" if ti is not None else ""
            raise XComError(
                f"no XCom {key!r} from task {task_id!r}{ended}; check that it returns a value "
                "(or pushes that key)"
            )
        return default

    def _expanded(self, task_id: str) -> bool:
        return any(r.map_index >= 0 for r in self.store.list_tis(self.dag_id, self.run_id,
                                                                 task_ids=[task_id]))


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
    hostname: str | None = None
    pid: int | None = None
    log_path: str | None = None
    run: DagRun | None = field(default=None, repr=False)

    @classmethod
    def from_record(cls, r: TaskInstanceRecord, run: DagRun | None) -> TaskInstance:
        return cls(r.dag_id, r.task_id, r.run_id, r.map_index, TaskInstanceState(r.state),
                   r.try_number, r.max_tries, r.operator, r.start_date, r.end_date,
                   timedelta(seconds=r.duration) if r.duration is not None else None,
                   r.error, r.hostname, r.pid, r.log_path, run)

    @property
    def key(self) -> TIKey:
        return TIKey(self.dag_id, self.run_id, self.task_id, self.map_index)

    def log_file(self, try_number: int | None = None) -> Path | None:
        """The log file of one try (default: the latest)."""
        if self.log_path is None:
            return None
        return Path(self.log_path) / f"attempt={try_number or self.try_number}.log"

    def try_log(self, try_number: int) -> str:
        path = self.log_file(try_number)
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    @property
    def log(self) -> str:
        """Everything logged by every try of this task instance, oldest first."""
        return "".join(self.try_log(n) for n in range(1, self.try_number + 1))

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


def load_xcom(text: str) -> Any:
    """The value of stored XCom text; sealed secrets are decrypted and masked from now on."""
    value = deserialize(text)
    return unseal_secrets(value) if SEALED_MARK in text else value
