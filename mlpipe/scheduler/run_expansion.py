"""Expansion: a mapped task or task group becomes one instance per input element, once
its upstream output is known.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from mlpipe.core.mapping import MappedOperator
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.runtime.expansion import ExpansionError, expansion_length, expansion_of
from mlpipe.runtime.log_paths import log_dir

log = logging.getLogger("mlpipe.scheduler")


class ExpansionMixin:
    """The expansion steps of ``DagRunDriver`` (they use its state; see there)."""

    def _expand_task(self, task_id: str) -> None:
        task = self.dag.get_task(task_id)
        assert isinstance(task, MappedOperator)
        existing = self.store.list_tis(self.dag.dag_id, self.run.run_id, task_ids=[task_id])
        expanded = [r for r in existing if r.map_index >= 0]
        if expanded:
            self._ready.extend(self.planner.expanded_task(task_id, len(expanded)))
            return
        try:
            count = expansion_length(expansion_of(self.run, repr(task), task.expand_input))
        except ExpansionError as exc:
            self._fail_expansion(task_id, str(exc))
            self._ready.extend(self.planner.expansion_failed(task_id=task_id))
            return
        if count:
            self.store.add_tis(self.dag.dag_id, self.run.run_id,
                               [(task_id, i, task.task_type, task.retries, task.pool)
                                for i in range(count)],
                               drop=[(task_id, -1)])
            self._created.update((task_id, i) for i in range(count))
        self._ready.extend(self.planner.expanded_task(task_id, count))

    def _expand_group(self, group_id: str) -> None:
        group_state = self.planner.groups[group_id]
        existing = self.store.list_tis(self.dag.dag_id, self.run.run_id,
                                       task_ids=group_state.task_ids)
        indexes = {r.map_index for r in existing if r.map_index >= 0}
        if indexes:
            self._ready.extend(self.planner.expanded_group(group_id, len(indexes)))
            return
        try:
            group = group_state.group
            count = expansion_length(expansion_of(self.run, f"task group {group_id!r}",
                                                  group.expand_input or {}))
        except ExpansionError as exc:
            log.error("%s", exc)
            self._ready.extend(self.planner.expansion_failed(group_id=group_id))
            return
        if count:
            undecided = [t for t in group_state.task_ids
                         if not self.planner.nodes[t].decided]
            self.store.add_tis(
                self.dag.dag_id, self.run.run_id,
                [(t, i, self.dag.task_dict[t].task_type, self.dag.task_dict[t].retries,
                  self.dag.task_dict[t].pool) for t in undecided for i in range(count)],
                drop=[(t, -1) for t in undecided])
            self._created.update((t, i) for t in undecided for i in range(count))
        self._ready.extend(self.planner.expanded_group(group_id, count))

    def _fail_expansion(self, task_id: str, message: str) -> None:
        key = self._key(task_id, -1)
        folder = log_dir(self.logs_root, key) if self.logs_root else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "attempt=1.log").write_text(f"ERROR - {message}\n", encoding="utf-8")
        self.store.transition(key, [S.NONE, S.SCHEDULED], S.FAILED, error=message,
                              end_date=datetime.now(UTC), try_number=1,
                              log_path=str(folder) if folder else None)
        log.error("%s", message)
