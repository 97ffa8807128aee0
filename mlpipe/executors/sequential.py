"""``SequentialExecutor``: runs each task instance in this process, one at a time.

A try's final transaction also carries the driver's hand-off (``ExecutionEnv.handoffs``):
the downstream instances it made ready are queued in that same transaction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from mlpipe.executors.base import Executor, TaskEvent, Workload
from mlpipe.runtime.task_runner import Claim, TryOutcome, claim_try, run_task_instance
from mlpipe.store.entities import TIKey


class SequentialExecutor(Executor):
    """In-process and in order: what ``dag.test()`` and debugging use."""

    in_process = True

    def __init__(self, parallelism: int = 1) -> None:
        super().__init__(1)
        self._events: deque[TaskEvent] = deque()
        self._claims: dict[tuple[TIKey, int], Claim] = {}

    def prepare(self, conn: Any, workload: Workload) -> None:
        """Claim the next workload in the caller's transaction (the previous try's last)."""
        env = self.env
        slot = (workload.key, workload.attempt)
        if env is None or slot in self._claims:
            return
        claim = claim_try(env.store, workload.key, env.logs_root, conn=conn)
        if claim is not None:
            self._claims[slot] = claim

    def submit(self, workload: Workload) -> None:
        env = self.env
        assert env is not None, "start() the executor first"
        key = workload.key
        handoff = env.handoffs.get((key.dag_id, key.run_id))
        on_finish: Callable[[TryOutcome, Any], object] | None = None
        if handoff is not None:
            def on_finish(outcome: TryOutcome, conn: Any) -> object:
                return handoff(conn, key, workload.attempt, outcome.state.value,
                               tuple(sorted(outcome.skip)))
        outcome = run_task_instance(
            env.store, env.dag_provider(key.dag_id), key, logs_root=env.logs_root,
            xcom_max_bytes=env.xcom_max_bytes, heartbeat_interval=env.heartbeat_interval,
            tracking=env.tracking, artifact_root=env.artifact_root,
            run=env.runs.get((key.dag_id, key.run_id)), on_finish=on_finish,
            claim=self._claims.pop((key, workload.attempt), None))
        if outcome is None:
            self._events.append(TaskEvent(key, None, workload.attempt, claimed=False))
        else:
            self._events.append(TaskEvent(key, None, workload.attempt,
                                          state=outcome.state.value,
                                          skip=tuple(sorted(outcome.skip))))

    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        events = list(self._events)
        self._events.clear()
        return events

    def kill(self, key: TIKey) -> bool:
        return False

    @property
    def busy(self) -> int:
        return len(self._events)
