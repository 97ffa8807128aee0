"""``SequentialExecutor``: runs each task instance in this process, one at a time."""

from __future__ import annotations

from collections import deque

from mlpipe.executors.base import Executor, TaskEvent, Workload
from mlpipe.runtime.task_runner import run_task_instance
from mlpipe.store.entities import TIKey


class SequentialExecutor(Executor):
    """In-process and in order: what ``dag.test()`` and debugging use."""

    def __init__(self, parallelism: int = 1) -> None:
        super().__init__(1)
        self._events: deque[TaskEvent] = deque()

    def submit(self, workload: Workload) -> None:
        env = self.env
        assert env is not None, "start() the executor first"
        key = workload.key
        outcome = run_task_instance(
            env.store, env.dag_provider(key.dag_id), key, logs_root=env.logs_root,
            xcom_max_bytes=env.xcom_max_bytes, heartbeat_interval=env.heartbeat_interval,
            tracking=env.tracking, artifact_root=env.artifact_root,
            run=env.runs.get((key.dag_id, key.run_id)))
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
