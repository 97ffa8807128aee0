"""``SequentialExecutor``: runs each task instance in this process, one at a time.

The runner hands each try's result to the driver's recorder (``ExecutionEnv.recorders``):
the driver writes it and queues the downstream instances it made ready in one transaction.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from mlpipe.executors.base import Executor, TaskEvent, Workload
from mlpipe.runtime.try_runner import Claim, Recorder, TryResult
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
        claim = env.runner.claim(workload.key, conn=conn)
        if claim is not None:
            self._claims[slot] = claim

    def submit(self, workload: Workload) -> None:
        env = self.env
        assert env is not None, "start() the executor first"
        key = workload.key
        run_key = (key.dag_id, key.run_id)
        driver_record = env.recorders.get(run_key)
        recorder: Recorder | None = None
        if driver_record is not None:
            def recorder(result: TryResult) -> bool:
                return driver_record(result, workload.attempt)
        result = env.runner.run(key, run=env.runs.get(run_key), recorder=recorder,
                                claim=self._claims.pop((key, workload.attempt), None))
        if result is None:
            self._events.append(TaskEvent(key, None, workload.attempt, claimed=False))
        else:
            self._events.append(TaskEvent(key, None, workload.attempt,
                                          state=result.state.value, skip=result.skip))

    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        events = list(self._events)
        self._events.clear()
        return events

    def kill(self, key: TIKey) -> bool:
        return False

    @property
    def busy(self) -> int:
        return len(self._events)
