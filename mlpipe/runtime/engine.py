"""Driving one DAG run to its end in this process, one ready task instance at a time."""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlpipe.core.mapping import MappedOperator, mapped_length
from mlpipe.core.planning import Action, RunPlanner
from mlpipe.core.states import DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.core.xcom_arg import XComArg
from mlpipe.errors import MlpipeError
from mlpipe.runtime.models import DagRun
from mlpipe.runtime.task_runner import run_try

log = logging.getLogger("mlpipe.engine")


class ExpansionError(MlpipeError):
    """A mapped task's input is not a list."""


class RunEngine:
    """Runs every task instance of ``run`` in dependency order, with retries.

    Ready work is handed on the moment an instance finishes (no polling). Retry delays are
    waited out with ``sleep`` unless ``skip_retry_delays`` is set.
    """

    def __init__(self, run: DagRun, *, skip_retry_delays: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        assert run.dag is not None
        self.run = run
        self.dag = run.dag
        self.planner = RunPlanner(self.dag)
        run.planner = self.planner
        self.skip_retry_delays = skip_retry_delays
        self.clock = clock
        self.sleep = sleep
        self._ready: deque[Action] = deque()
        self._retries: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._synced = 0

    def execute(self) -> DagRun:
        run = self.run
        run.state = DagRunState.RUNNING
        run.start_date = datetime.now(UTC)
        for task in self.dag.task_dict.values():
            run.ensure_ti(task.task_id, -1, task.task_type, task.retries)
        self._ready.extend(self.planner.start())
        while True:
            while self._ready:
                self._handle(self._ready.popleft())
            self._sync_decided()
            if not self._retries:
                break
            due, _, task_id, map_index = heapq.heappop(self._retries)
            wait = due - self.clock()
            if wait > 0 and not self.skip_retry_delays:
                self.sleep(wait)
            self._run_instance(task_id, map_index)
        self._finish()
        return run

    # -- actions ----------

    def _handle(self, action: Action) -> None:
        if action.kind == "run":
            self._run_instance(action.task_id, action.map_index)
        elif action.kind == "expand_task":
            self._expand_task(action.task_id)
        else:
            self._expand_group(action.group_id)

    def _run_instance(self, task_id: str, map_index: int) -> None:
        task = self.dag.task_dict[task_id]
        ti = self.run.ensure_ti(task_id, map_index, task.task_type, task.retries)
        outcome = run_try(self.run, ti, task)
        if outcome.state is S.UP_FOR_RETRY:
            due = self.clock() + (outcome.retry_in.total_seconds() if outcome.retry_in else 0)
            heapq.heappush(self._retries, (due, next(self._seq), task_id, map_index))
            return
        # Skips first: the branch's finish must not release the tasks it skips.
        if outcome.skip:
            self._ready.extend(self.planner.skip(task_id, map_index, outcome.skip))
        self._ready.extend(self.planner.finished(task_id, map_index, outcome.state))

    def _expand_task(self, task_id: str) -> None:
        task = self.dag.task_dict[task_id]
        assert isinstance(task, MappedOperator)
        try:
            resolved = self._resolve_expand_input(task.task_id, task.expand_input)
        except ExpansionError as exc:
            ti = self.run.ensure_ti(task_id, -1, task.task_type, task.retries)
            ti.error = str(exc)
            ti.log_parts.append(f"ERROR - {exc}\n")
            self._ready.extend(self.planner.expansion_failed(task_id=task_id))
            return
        self.run.expansions[task_id] = resolved
        count = mapped_length([len(v) for v in resolved.values()])
        if count:
            self.run.drop_ti(task_id, -1)
        self._ready.extend(self.planner.expanded_task(task_id, count))

    def _expand_group(self, group_id: str) -> None:
        group = self.planner.groups[group_id].group
        try:
            resolved = self._resolve_expand_input(f"task group {group_id!r}",
                                                  group.expand_input or {})
        except ExpansionError as exc:
            log.error("%s", exc)
            self._ready.extend(self.planner.expansion_failed(group_id=group_id))
            return
        self.run.expansions[group_id] = resolved
        count = mapped_length([len(v) for v in resolved.values()])
        if count:
            for task_id in self.planner.groups[group_id].task_ids:
                self.run.drop_ti(task_id, -1)
        self._ready.extend(self.planner.expanded_group(group_id, count))

    def _resolve_expand_input(self, owner: str, expand_input: dict[str, Any]
                              ) -> dict[str, list[Any]]:
        resolved: dict[str, list[Any]] = {}
        for name, value in expand_input.items():
            if isinstance(value, XComArg):
                value = self.run.pull(value.operator.task_id, value.key, requester=None)
                if isinstance(value, dict):
                    value = [[k, v] for k, v in value.items()]
                if not isinstance(value, list):
                    raise ExpansionError(
                        f"cannot expand {owner}: argument {name!r} got {type(value).__name__} "
                        f"{value!r} from an upstream task; it must return a list or dict"
                    )
            resolved[name] = list(value)
        return resolved

    # -- bookkeeping ----------

    def _sync_decided(self) -> None:
        """Copy states the planner decided (skips, upstream failures) onto task instances."""
        decided = self.planner.finished_states
        for task_id, map_index, state in decided[self._synced:]:
            ti = self.run.get_task_instance(task_id, map_index)
            if ti is None:
                task = self.dag.task_dict[task_id]
                ti = self.run.ensure_ti(task_id, map_index, task.task_type, task.retries)
            if not ti.state.finished:
                ti.state = state
        self._synced = len(decided)

    def _finish(self) -> None:
        run = self.run
        self._sync_decided()
        failed_leaf = any(
            ti.state in (S.FAILED, S.UPSTREAM_FAILED)
            for ti in run.task_instances
            if not self.dag.task_dict[ti.task_id].downstream_task_ids
        )
        stuck = [ti for ti in run.task_instances if not ti.state.finished]
        if stuck:
            log.error("run %s deadlocked: %s never became ready", run.run_id,
                      [ti.task_id for ti in stuck])
        run.state = DagRunState.FAILED if failed_leaf or stuck else DagRunState.SUCCESS
        run.end_date = datetime.now(UTC)
        callback = (self.dag.on_success_callback if run.state is DagRunState.SUCCESS
                    else self.dag.on_failure_callback)
        if callback is not None:
            reason = "success" if run.state is DagRunState.SUCCESS else "task_failure"
            try:
                callback({"dag": self.dag, "dag_run": run, "run_id": run.run_id,
                          "reason": reason, "params": run.params})
            except Exception:
                log.exception("DAG callback failed")

