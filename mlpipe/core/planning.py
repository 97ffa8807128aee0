"""Which task instances of a DAG run are ready, decided one event at a time.

``RunPlanner`` keeps, for every waiting task, a running tally of how its upstream task
instances ended, so each finished instance costs time proportional to its direct downstream
tasks only (no rescans of the whole DAG). It is pure: the engine tells it what happened
(an instance finished, a mapped task or group was expanded to N instances) and it answers
with what to do next (run an instance, resolve an expansion). Skips and upstream failures
that follow from trigger rules are decided here and reported through ``finished_states``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mlpipe.core.states import FINISHED_STATES
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.core.trigger_rule import Decision, UpstreamTally, decide
from mlpipe.core.xcom_arg import XComArg
from mlpipe.errors import DagDefinitionError

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.core.operator import BaseOperator
    from mlpipe.core.task_group import TaskGroup


@dataclass(frozen=True, slots=True)
class Action:
    """``run`` a task instance, or resolve the length of a mapped ``task`` or ``group``."""

    kind: Literal["run", "expand_task", "expand_group"]
    task_id: str = ""
    map_index: int = -1
    group_id: str = ""


@dataclass(slots=True)
class _GroupState:
    group: TaskGroup
    task_ids: list[str]
    producers: set[str]
    count: int | None = None


@dataclass(slots=True)
class _Node:
    task: BaseOperator
    group_id: str | None  # the mapped group this task belongs to, if any
    static: bool  # exactly one instance, known before the run
    shared: UpstreamTally = field(default_factory=UpstreamTally)
    same_group_up: list[str] = field(default_factory=list)
    units: dict[int, UpstreamTally] | None = None
    undecided: set[int] = field(default_factory=set)
    decided: bool = False
    count: int | None = None
    states: dict[int, S] = field(default_factory=dict)
    #: downstream task ids in the DAG's definition order, so what becomes ready together is
    #: released in the same order every run (a set's order changes with PYTHONHASHSEED)
    downstream: tuple[str, ...] = ()


class RunPlanner:
    """Event-driven readiness for one DAG run (see the module docstring)."""

    def __init__(self, dag: DAG) -> None:
        self.dag = dag
        self.nodes: dict[str, _Node] = {}
        self.groups: dict[str, _GroupState] = {}
        self._producer_of: dict[str, list[str]] = {}
        self._open = 0  # tasks not finished in every instance
        for task in dag.task_dict.values():
            group = task.task_group.mapped_group() if task.task_group is not None else None
            gid = group.group_id if group is not None else None
            if group is not None and gid is not None and gid not in self.groups:
                producers = {p.task_id for p in group.expand_producers()}
                self.groups[gid] = _GroupState(group, [], producers)
                for p in producers:
                    self._producer_of.setdefault(p, []).append(gid)
            if gid is not None:
                self.groups[gid].task_ids.append(task.task_id)
            static = not task.is_mapped and gid is None
            self.nodes[task.task_id] = _Node(task, gid, static, count=1 if static else None)
        order = {task_id: i for i, task_id in enumerate(self.nodes)}
        for node in self.nodes.values():
            node.downstream = tuple(sorted(node.task.downstream_task_ids, key=order.__getitem__))
            for up_id in node.task.upstream_task_ids:
                up = self.nodes[up_id]
                if self._same_group(up, node):
                    node.shared.unknown += 1
                    node.same_group_up.append(up_id)
                elif up.static:
                    node.shared.expected += 1
                else:
                    node.shared.unknown += 1
        self._open = len(self.nodes)
        self.finished_states: list[tuple[str, int, S]] = []
        self._queue: deque[tuple[_Node, int, S]] = deque()
        self._draining = False

    # -- queries ----------

    @property
    def complete(self) -> bool:
        """True once every task instance of the run has finished."""
        return self._open == 0

    def count(self, task_id: str) -> int | None:
        """How many instances the task has (None: not known yet)."""
        return self.nodes[task_id].count

    def states(self, task_id: str) -> Mapping[int, S]:
        """Finished instances of the task by map index."""
        return self.nodes[task_id].states

    def group_count(self, group_id: str) -> int | None:
        return self.groups[group_id].count

    def is_same_group(self, upstream_id: str, task_id: str) -> bool:
        """True if both tasks are in one mapped group: instances pair up by map index."""
        return self._same_group(self.nodes[upstream_id], self.nodes[task_id])

    def undecided_task_ids(self) -> list[str]:
        return [tid for tid, n in self.nodes.items() if n.count is None or
                len(n.states) < (n.count or 0)]

    # -- events ----------

    def start(self) -> list[Action]:
        """The first actions: roots to run, literal mapped groups expanded."""
        actions: list[Action] = []
        for gid, group_state in self.groups.items():
            expand_input = group_state.group.expand_input or {}
            if not any(isinstance(v, XComArg) for v in expand_input.values()):
                actions.append(Action("expand_group", group_id=gid))
        for node in self.nodes.values():
            self._evaluate(node, actions)
        return actions

    def finished(self, task_id: str, map_index: int, state: S) -> list[Action]:
        """An instance the engine ran has finished in ``state`` (success/failed/skipped).

        Raises:
            DagDefinitionError: ``state`` is not final (a retry is not an outcome).
        """
        if state not in FINISHED_STATES:
            raise DagDefinitionError(
                f"{task_id}[{map_index}] reported as {state.value!r}, which is not final; "
                f"report one of {sorted(s.value for s in FINISHED_STATES)}")
        actions: list[Action] = []
        self._finish(self.nodes[task_id], map_index, state, actions)
        return actions

    def expanded_task(self, task_id: str, count: int) -> list[Action]:
        """A mapped task's input resolved to ``count`` instances."""
        node = self.nodes[task_id]
        actions: list[Action] = []
        if count == 0:
            self._finish(node, -1, S.SKIPPED, actions)
            return actions
        node.count = count
        for down_id in node.downstream:
            down = self.nodes[down_id]
            down.shared.unknown -= 1
            down.shared.expected += count
        actions.extend(Action("run", task_id, i) for i in range(count))
        return actions

    def expanded_group(self, group_id: str, count: int) -> list[Action]:
        """A mapped task group's input resolved to ``count`` instances of each of its tasks."""
        group_state = self.groups[group_id]
        group_state.count = count
        actions: list[Action] = []
        members = [self.nodes[t] for t in group_state.task_ids if not self.nodes[t].decided]
        if count == 0:
            for node in members:
                self._finish(node, -1, S.SKIPPED, actions)
            return actions
        for node in members:
            node.count = count
            node.decided = True
            pending_same = [u for u in node.same_group_up if -1 not in self.nodes[u].states]
            node.shared.unknown -= len(pending_same)
            node.units = {i: UpstreamTally(expected=len(pending_same)) for i in range(count)}
            node.undecided = set(range(count))
            for down_id in node.downstream:
                down = self.nodes[down_id]
                if not self._same_group(node, down):
                    down.shared.unknown -= 1
                    down.shared.expected += count
        for node in members:
            self._evaluate(node, actions)
        return actions

    def expansion_failed(self, task_id: str | None = None, group_id: str | None = None) -> list[
            Action]:
        """A mapped task or group could not resolve its input: its instances fail upstream."""
        actions: list[Action] = []
        if task_id is not None:
            self._finish(self.nodes[task_id], -1, S.FAILED, actions)
        if group_id is not None:
            for tid in self.groups[group_id].task_ids:
                node = self.nodes[tid]
                if not node.decided:
                    self._finish(node, -1, S.UPSTREAM_FAILED, actions)
        return actions

    def skip(self, from_task_id: str, map_index: int, task_ids: Iterable[str]) -> list[Action]:
        """A branch or short-circuit in ``from_task_id`` skips ``task_ids``.

        Every target is marked decided before any skip propagates, so a target further down
        (an ``all_done`` task, say) is never released by an earlier target's skip.
        """
        actions: list[Action] = []
        source = self.nodes[from_task_id]
        targets: list[tuple[_Node, int]] = []
        for tid in task_ids:
            node = self.nodes[tid]
            if node.units is not None:
                indexes = ([map_index] if self._same_group(source, node) and map_index >= 0
                           else sorted(node.undecided))
                for i in indexes:
                    if i in node.undecided:
                        node.undecided.discard(i)
                        targets.append((node, i))
            elif not node.decided:
                node.decided = True
                targets.append((node, -1))
        for node, index in targets:
            self._finish(node, index, S.SKIPPED, actions)
        return actions

    # -- internals ----------

    @staticmethod
    def _same_group(up: _Node, down: _Node) -> bool:
        return up.group_id is not None and up.group_id == down.group_id

    def _evaluate(self, node: _Node, actions: list[Action]) -> None:
        if node.units is not None:
            for i in sorted(node.undecided):
                self._evaluate_unit(node, i, actions)
            return
        if node.decided:
            return
        decision = decide(node.task.trigger_rule, node.shared)
        if decision is Decision.WAIT:
            return
        if decision is Decision.RUN:
            if node.group_id is not None:
                return  # waits for its group to be expanded
            node.decided = True
            if node.task.is_mapped:
                actions.append(Action("expand_task", node.task.task_id))
            else:
                actions.append(Action("run", node.task.task_id, -1))
            return
        self._finish(node, -1, S(decision.value), actions)

    def _evaluate_unit(self, node: _Node, index: int, actions: list[Action]) -> None:
        assert node.units is not None
        decision = decide(node.task.trigger_rule, node.shared.plus(node.units[index]))
        if decision is Decision.WAIT:
            return
        node.undecided.discard(index)
        if decision is Decision.RUN:
            actions.append(Action("run", node.task.task_id, index))
        else:
            self._finish(node, index, S(decision.value), actions)

    def _finish(self, node: _Node, index: int, state: S, actions: list[Action]) -> None:
        """Record a finished instance and propagate; iterative so long skip chains are fine."""
        self._queue.append((node, index, state))
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                self._propagate(*self._queue.popleft(), actions)
        finally:
            self._draining = False

    def _propagate(self, node: _Node, index: int, state: S, actions: list[Action]) -> None:
        unexpanded = index == -1 and not node.static
        if index == -1:
            node.decided = True
            node.count = 1
        if index in node.states:
            return
        node.states[index] = state
        self.finished_states.append((node.task.task_id, index, state))
        if len(node.states) == node.count:
            self._open -= 1
        touched: list[_Node] = []
        for down_id in node.downstream:
            down = self.nodes[down_id]
            if self._same_group(node, down) and index >= 0 and down.units is not None:
                down.units[index].add(state)
                if index in down.undecided:
                    self._evaluate_unit(down, index, actions)
                continue
            if unexpanded:
                down.shared.unknown -= 1
                down.shared.expected += 1
            down.shared.add(state)
            touched.append(down)
        for down in touched:
            self._evaluate(down, actions)
        for gid in self._producer_of.get(node.task.task_id, ()):
            self._maybe_expand_group(gid, actions)

    def _maybe_expand_group(self, group_id: str, actions: list[Action]) -> None:
        group_state = self.groups[group_id]
        if group_state.count is not None:
            return
        producers = [self.nodes[p] for p in group_state.producers]
        if any(p.count is None or len(p.states) < p.count for p in producers):
            return
        if all(s is S.SUCCESS for p in producers for s in p.states.values()):
            actions.append(Action("expand_group", group_id=group_id))
        else:
            group_state.count = 0
            for tid in group_state.task_ids:
                node = self.nodes[tid]
                if not node.decided:
                    self._finish(node, -1, S.UPSTREAM_FAILED, actions)
