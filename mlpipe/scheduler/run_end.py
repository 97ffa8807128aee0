"""Run end: the run's final state from its leaves, the DAG's callback, and the MLflow
parent run ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mlpipe.core.states import FINISHED_STATES, DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.runtime.callbacks import invoke_callbacks
from mlpipe.runtime.models import DagRun
from mlpipe.tracking.task_runs import end_parent_run

log = logging.getLogger("mlpipe.scheduler")


class RunEndMixin:
    """The end steps of ``DagRunDriver`` (they use its state; see there)."""

    # from DeadlineMixin (annotations only: the driver's MRO provides them)
    _sla_due: dict[str, datetime]
    _run_deadline: datetime | None
    _check_deadlines: Callable[..., None]

    def finish(self) -> DagRun:
        """Record the run's final state (and call the DAG's callback)."""
        return self._finish()

    def _finish(self) -> DagRun:
        self._sync_decided()
        states = self.store.ti_states(self.dag.dag_id, self.run.run_id)
        leaves = {t.task_id for t in self.dag.leaves}
        failed_leaf = any(state in (S.FAILED, S.UPSTREAM_FAILED)
                          for task_id, _, state in states if task_id in leaves)
        finished = {s.value for s in FINISHED_STATES}
        stuck = {task_id for task_id, _, state in states if state not in finished}
        if stuck:
            log.error("run %s cannot progress: %s never became ready", self.run.run_id,
                      sorted(stuck))
        state = (DagRunState.FAILED if failed_leaf or stuck or self._timed_out
                 else DagRunState.SUCCESS)
        marked = self.store.get_run(self.dag.dag_id, self.run.run_id).state
        if marked in (DagRunState.SUCCESS, DagRunState.FAILED):  # marked by hand meanwhile
            state = DagRunState(marked)
        ended = datetime.now(UTC)
        if self._sla_due or self._run_deadline is not None:
            self._check_deadlines(ended=ended)  # deadlines passed since the last step
        self.store.end_run(self.dag.dag_id, self.run.run_id, state.value, ended)
        self.run.state, self.run.end_date = state, ended
        env = self.executor.env
        if env is not None:
            env.runs.pop((self.dag.dag_id, self.run.run_id), None)
            env.recorders.pop((self.dag.dag_id, self.run.run_id), None)
        end_parent_run(self.store, self.dag.dag_id, self.run.run_id,
                       env.tracking if env is not None else None, state.value)
        callback = (self.dag.on_success_callback if state is DagRunState.SUCCESS
                    else self.dag.on_failure_callback)
        if callback:
            reason = "success" if state is DagRunState.SUCCESS else "task_failure"
            invoke_callbacks(callback, {"dag": self.dag, "dag_run": self.run,
                                        "run_id": self.run.run_id, "reason": reason,
                                        "params": self.run.params},
                             what="DAG callback", logger=log)
        if self.run.xcom_read_through:  # handed to the caller: read the store from now on
            self.run.xcom_cache, self.run.xcom_read_through = None, False
        return self.run
