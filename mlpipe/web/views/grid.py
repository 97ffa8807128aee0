"""The grid: runs (columns) x tasks (rows), task groups as collapsible rows.

Pure: it takes the DAG, the runs shown and their task-instance records and returns what
the template draws. A mapped task's cell sums up its instances (the state needing attention
first, and a count per state) and lists them for expanding; a collapsed group shows one row
whose cells sum up every instance of every task inside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlpipe.core.dag import DAG
from mlpipe.core.operator import BaseOperator
from mlpipe.core.task_group import TaskGroup
from mlpipe.store.entities import DagRunRecord, TaskInstanceRecord
from mlpipe.web.views.states import summary_state


@dataclass(frozen=True, slots=True)
class Instance:
    """One mapped instance inside a cell."""

    map_index: int
    state: str
    try_number: int


@dataclass(frozen=True, slots=True)
class Cell:
    """One task (or group) in one run."""

    run_id: str
    state: str
    #: instances by state, for mapped tasks and groups (empty for a plain task)
    counts: tuple[tuple[str, int], ...] = ()
    instances: tuple[Instance, ...] = ()
    try_number: int = 0

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True, slots=True)
class Row:
    """A task or a task group; ``depth`` is how deeply it is nested in groups."""

    node_id: str
    label: str
    depth: int
    is_group: bool
    cells: tuple[Cell, ...]
    is_mapped: bool = False
    collapsed: bool = False


@dataclass(frozen=True, slots=True)
class Grid:
    runs: tuple[DagRunRecord, ...]
    rows: tuple[Row, ...] = field(default=())


def build_grid(dag: DAG, runs: Sequence[DagRunRecord],
               instances: Mapping[str, Iterable[TaskInstanceRecord]], *,
               collapsed: Iterable[str] = ()) -> Grid:
    """The grid of ``runs`` (in the order given) with ``instances`` by run id.

    Groups named in ``collapsed`` show as one summing row; their contents are left out.
    """
    by_task: dict[tuple[str, str], list[TaskInstanceRecord]] = {}
    for run_id, records in instances.items():
        for record in records:
            by_task.setdefault((run_id, record.task_id), []).append(record)
    order = {t.task_id: i for i, t in enumerate(dag.topological_sort())}
    builder = _Builder(dag, [r.run_id for r in runs], by_task, order, set(collapsed))
    builder.walk(dag.task_group, 0)
    return Grid(tuple(runs), tuple(builder.rows))


@dataclass
class _Builder:
    dag: DAG
    run_ids: list[str]
    by_task: dict[tuple[str, str], list[TaskInstanceRecord]]
    order: dict[str, int]
    collapsed: set[str]
    rows: list[Row] = field(default_factory=list)

    def walk(self, group: TaskGroup, depth: int) -> None:
        for child in sorted(group.children.values(), key=self._position):
            if isinstance(child, TaskGroup):
                self._group(child, depth)
            else:
                self.rows.append(self._task(child, depth))

    def _position(self, node: BaseOperator | TaskGroup) -> int:
        if isinstance(node, TaskGroup):
            return min((self.order.get(t.task_id, 0) for t in node.iter_tasks()), default=0)
        return self.order.get(node.task_id, 0)

    def _group(self, group: TaskGroup, depth: int) -> None:
        group_id = group.group_id or ""
        task_ids = [t.task_id for t in group.iter_tasks()]
        cells = tuple(_summed(run_id, [r for t in task_ids
                                       for r in self.by_task.get((run_id, t), [])])
                      for run_id in self.run_ids)
        shut = group_id in self.collapsed
        self.rows.append(Row(group_id, group_id.rsplit(".", 1)[-1], depth, True, cells,
                             collapsed=shut))
        if not shut:
            self.walk(group, depth + 1)

    def _task(self, task: BaseOperator, depth: int) -> Row:
        mapped = bool(task.is_mapped)
        cells = []
        for run_id in self.run_ids:
            records = self.by_task.get((run_id, task.task_id), [])
            if mapped or len(records) > 1 or any(r.map_index >= 0 for r in records):
                cells.append(_summed(run_id, records))
            elif records:
                cells.append(Cell(run_id, records[0].state, try_number=records[0].try_number))
            else:
                cells.append(Cell(run_id, "none"))
        parent = task.task_group.group_id if task.task_group is not None else None
        label = task.task_id[len(parent) + 1:] if parent and task.task_id.startswith(
            parent + ".") else task.task_id
        return Row(task.task_id, label, depth, False, tuple(cells), is_mapped=mapped)


def _summed(run_id: str, records: list[TaskInstanceRecord]) -> Cell:
    counts = Counter(r.state for r in records)
    instances = tuple(Instance(r.map_index, r.state, r.try_number)
                      for r in sorted(records, key=lambda r: (r.task_id, r.map_index)))
    return Cell(run_id, summary_state(counts), tuple(sorted(counts.items())), instances)
