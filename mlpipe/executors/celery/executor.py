"""``CeleryExecutor``: the scheduler's side. Submit = a message to the task's queue; poll =
the states of submitted tries, read from the metadata database (never Celery results).

A try's life is the database's: the worker claims it (queued -> running, compare-and-set),
beats its heartbeat, and records its end. The driver that submitted it sees the recorded
state here, or declares it lost after one lease without a heartbeat (``run_liveness``), so
a worker killed mid-try costs one lease, and a message delivered twice runs nothing twice.
Finished tries are found through the state-change rows (``store.changed_since``: only what
changed since the last look), each confirmed by its instance's row.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import SettingsError
from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload
from mlpipe.executors.celery.app import RUN_TRY, TryMessage, broker_priority, make_app
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("mlpipe.executor")

#: the default broker (SPEC section 7)
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: seconds between two reads of the submitted tries' states while waiting
POLL_INTERVAL = 0.005
#: the longest pause between reads once nothing has changed for a while
POLL_INTERVAL_MAX = 0.05
#: seconds between two looks at every submitted try (the change feed's safety net)
SWEEP_INTERVAL = 1.0
_UNFINISHED = (S.QUEUED.value, S.RUNNING.value)


def refuse_sqlite(database_url: str) -> None:
    """Workers on other machines cannot share a SQLite file: refuse it with one line."""
    if database_url.startswith("sqlite"):
        raise SettingsError(
            f"setting MLPIPE_DATABASE_URL: the celery executor needs a database every worker "
            f"can reach, not SQLite ({database_url}); set MLPIPE_DATABASE_URL="
            f"postgresql+psycopg://USER@HOST/DB")


def warn_local_artifacts(artifact_root: str) -> None:
    """A ``file://`` artifact root only works if every worker mounts the same folder."""
    if artifact_root.startswith("file:"):
        log.warning("MLPIPE_ARTIFACT_ROOT is %s: with the celery executor every worker must "
                    "see that same folder (a shared mount); use s3://... otherwise",
                    artifact_root)


class CeleryExecutor(Executor):
    """Sends each try to the Celery queue of its task (``queue=``), priority from
    ``priority_weight``; ``parallelism`` is not used (the workers' slots are the limit)."""

    def __init__(self, parallelism: int = 0, *, broker_url: str | None = None,
                 lease_s: float = 60.0) -> None:
        super().__init__(parallelism or 1)
        self.broker_url = broker_url
        self.lease_s = lease_s
        self.app: Celery | None = None
        #: submitted and not yet reported: key -> attempt
        self._inflight: dict[TIKey, int] = {}
        self._idle_since = time.monotonic()
        #: the last state change read (``store.changed_since``)
        self._cursor = 0
        self._next_sweep = 0.0

    @classmethod
    def from_settings(cls, settings: Any, parallelism: int = 0) -> CeleryExecutor:
        """As ``MLPIPE_CELERY_BROKER_URL`` and ``MLPIPE_TASK_LEASE_S`` say."""
        refuse_sqlite(settings.database)
        return cls(parallelism, broker_url=settings.celery_broker_url,
                   lease_s=settings.task_lease_s)

    def start(self, env: ExecutionEnv) -> None:
        super().start(env)
        refuse_sqlite(str(env.store.engine.url))
        if env.runner.artifact_root:
            warn_local_artifacts(env.runner.artifact_root)
        self._cursor = env.store.last_transition_id()
        if self.app is None:
            self.app = make_app(self.broker_url or DEFAULT_BROKER,
                                visibility_timeout=visibility_timeout(self.lease_s))

    def submit(self, workload: Workload) -> None:
        env, app = self.env, self.app
        assert env is not None and app is not None, "start() the executor first"
        key = workload.key
        record = env.store.get_ti(key)
        task = env.dag_provider(key.dag_id).get_task(key.task_id)
        try_number = (record.try_number if record is not None else 0) + 1
        message = TryMessage(key, try_number, workload.attempt)
        self._inflight[key] = workload.attempt
        app.send_task(RUN_TRY, args=message.args(), queue=task.queue or "default",
                      priority=broker_priority(task.priority_weight, app.conf.broker_url))
        self._idle_since = time.monotonic()

    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        """Tries that left queued/running since they were submitted; waits up to ``timeout``."""
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            events = self._finished()
            left = deadline - time.monotonic()
            if events or left <= 0 or not self._inflight:
                if not self._inflight and left > 0 and not events:
                    time.sleep(min(left, POLL_INTERVAL_MAX))
                return events
            # read often right after a submission, less so while long tries run
            quiet = time.monotonic() - self._idle_since
            time.sleep(min(left, POLL_INTERVAL if quiet < 1.0 else POLL_INTERVAL_MAX))

    def _finished(self) -> list[TaskEvent]:
        """Submitted tries no longer queued or running: the instances with a state change
        since the last look, confirmed by their row; every instance now and then."""
        env = self.env
        assert env is not None
        changed, self._cursor = env.store.changed_since(self._cursor)
        if not self._inflight:
            return []
        events: list[TaskEvent] = []
        if time.monotonic() >= self._next_sweep:  # a late commit may hide below the cursor
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL
            for dag_id, run_id in {(k.dag_id, k.run_id) for k in self._inflight}:
                for task_id, map_index, state in env.store.ti_states(dag_id, run_id):
                    key = TIKey(dag_id, run_id, task_id, map_index)
                    if state not in _UNFINISHED and key in self._inflight:
                        events.append(TaskEvent(key, None, self._inflight.pop(key)))
        for key in dict.fromkeys(changed):
            if key in self._inflight:
                record = env.store.get_ti(key)
                if record is None:
                    events.append(TaskEvent(key, None, self._inflight.pop(key)))
                elif record.state not in _UNFINISHED:  # the driver need not read it again
                    skip = tuple(json.loads(record.skip_downstream or "[]"))
                    events.append(TaskEvent(key, None, self._inflight.pop(key),
                                            state=record.state, skip=skip))
        if events:
            self._idle_since = time.monotonic()
        return events

    def kill(self, key: TIKey) -> bool:
        """Forget ``key``: its worker's try stops itself at its next heartbeat once the row
        no longer says it runs (the driver changes the row)."""
        return self._inflight.pop(key, None) is not None

    @property
    def busy(self) -> int:
        return len(self._inflight)

    def shutdown(self) -> None:
        """Nothing to wait for here: submitted tries belong to the workers and the database."""
        if self.app is not None:
            self.app.close()
            self.app = None


def visibility_timeout(lease_s: float) -> float:
    """How long Redis keeps a taken, unacknowledged message from the queue: a few leases,
    so a worker that died holding a message that was never claimed costs little."""
    return max(10.0, 5 * lease_s)
