"""``TryRunner``: the one way a try of a task instance runs, wherever it runs.

``dag.test()``, every executor (in this process, in a forked child, on a worker) and
``mlpipe tasks run`` build a ``TryRunner`` with ``TryRunner.from_settings`` and call
``run``. A try goes: claim (queued -> running) -> log file, heartbeat, MLflow run ->
``task_runner.execute_try`` -> a ``TryResult`` -> its *recorder* -> callbacks.

The recorder writes the result. By default it is ``TryRunner.record`` (one transaction of
its own: what a child process or a worker does). A driver running tries in its own process
passes its ``DagRunDriver.record_try`` instead, which opens the transaction itself and, in
it, also queues what the result made ready. Either way the store only writes rows: it never
calls back into the scheduler or an executor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.core.dag import DAG
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.runtime.heartbeats import HEARTBEATS
from mlpipe.runtime.log_capture import LogFile, capture_task_output
from mlpipe.runtime.log_paths import log_folder
from mlpipe.runtime.models import DagRun, TaskInstance
from mlpipe.runtime.remote_logs import SHIP_INTERVAL, shipping_log
from mlpipe.runtime.task_runner import (
    TryOutcome,
    callbacks_of,
    execute_try,
    log_outcome,
    run_callbacks,
)
from mlpipe.store.entities import TIKey
from mlpipe.tracking.config import TrackingConfig
from mlpipe.tracking.task_runs import TaskMlflowRun

if TYPE_CHECKING:
    from mlpipe.settings import Settings
    from mlpipe.store.memory import MemoryStore
    from mlpipe.store.metadata_store import MetadataStore

__all__ = ["Claim", "Recorder", "TryResult", "TryRunner"]

log = logging.getLogger("mlpipe.task")
_HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class Claim:
    """A try this process claimed (queued -> running), about to run."""

    key: TIKey
    try_number: int
    max_tries: int
    operator: str
    started: datetime
    log_path: str


@dataclass(frozen=True, slots=True)
class TryResult:
    """What one try produced, ready to be written: its state, XComs and timings."""

    key: TIKey
    try_number: int
    state: S
    xcoms: dict[str, str]
    end_date: datetime
    duration: float
    skip: tuple[str, ...] = ()
    next_retry_at: datetime | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False)
    #: a rescheduled sensor's next poke (state ``up_for_reschedule``)
    reschedule_date: datetime | None = None

    @classmethod
    def of(cls, ti: TaskInstance, outcome: TryOutcome, xcoms: dict[str, str]) -> TryResult:
        ended = ti.end_date or datetime.now(UTC)
        retry = ended + outcome.retry_in if outcome.retry_in is not None else None
        return cls(ti.key, ti.try_number, outcome.state, xcoms, ended,
                   ti.duration.total_seconds() if ti.duration else 0.0,
                   tuple(sorted(outcome.skip)), retry, ti.error, outcome.exception,
                   outcome.reschedule_at)

    def row_values(self) -> dict[str, Any]:
        """The task-instance columns this result sets (besides the state)."""
        values: dict[str, Any] = {"end_date": self.end_date, "duration": self.duration,
                                  "next_retry_at": self.next_retry_at, "error": self.error}
        if self.skip:  # only a branch's success sets it (clearing the instance resets it)
            values["skip_downstream"] = json.dumps(list(self.skip))
        if self.reschedule_date is not None:  # only a rescheduled sensor's poke sets it
            values["reschedule_date"] = self.reschedule_date
        return values


#: writes a result; False when the instance was no longer running (nothing written)
Recorder = Callable[[TryResult], bool]


@dataclass
class TryRunner:
    """Runs tries of task instances against one store; built once from ``Settings``."""

    store: MetadataStore | MemoryStore
    dag_provider: Callable[[str], DAG]
    logs_root: Path
    xcom_max_bytes: int = 48 * 1024
    #: seconds between heartbeats of a running try (0: none, nothing watches them)
    heartbeat_interval: float = 5.0
    #: where tasks log to MLflow (None: tasks that ask for an MLflow run fail)
    tracking: TrackingConfig | None = None
    #: where tasks write artifacts (context["artifact_prefix"] is under it)
    artifact_root: str | None = None
    #: where each try's log is copied while it runs and at its end (``remote_logs``)
    remote_log_uri: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: MetadataStore | MemoryStore,
                      dag_provider: Callable[[str], DAG], *, logs_root: Path | None = None,
                      heartbeat_interval: float | None = None) -> TryRunner:
        """The runner every entry point uses: tracking, artifact root and limits as set."""
        return cls(store, dag_provider,
                   logs_root=logs_root or settings.home.resolve() / "logs",
                   xcom_max_bytes=settings.xcom_max_bytes,
                   heartbeat_interval=(max(0.05, settings.task_lease_s / 6)
                                       if heartbeat_interval is None else heartbeat_interval),
                   tracking=settings.tracking, artifact_root=settings.artifacts,
                   remote_log_uri=settings.remote_log_uri)

    def claim(self, key: TIKey, *, conn: Any = None) -> Claim | None:
        """Claim the next try of ``key`` for this process (in ``conn``'s transaction if given)."""
        folder = log_folder(str(self.logs_root), key)
        started = datetime.now(UTC)
        claimed = self.store.claim(key, start_date=started, pid=os.getpid(),
                                   hostname=_HOSTNAME, log_path=folder, conn=conn)
        if claimed is None:
            return None
        return Claim(key, *claimed, started, folder)

    def load_run(self, key: TIKey) -> DagRun:
        """The run ``key`` belongs to, read from the store, with its params resolved."""
        dag = self.dag_provider(key.dag_id)
        record = self.store.get_run(key.dag_id, key.run_id)
        return DagRun.from_record(record, dag, self.store, xcom_max_bytes=self.xcom_max_bytes)

    def record(self, result: TryResult) -> bool:
        """Write ``result`` (state and XComs) in a transaction of its own."""
        return self.store.finish_try(result.key, to_state=result.state.value,
                                     xcoms=result.xcoms, **result.row_values())

    def run(self, key: TIKey, *, run: DagRun | None = None, claim: Claim | None = None,
            recorder: Recorder | None = None,
            on_heartbeat_lost: Callable[[], None] | None = None) -> TryResult | None:
        """Claim ``key`` and run one try; None if it was not claimable (runs elsewhere).

        ``run``: the run's object this process already holds (a driver's, whose XCom cache
        the try then shares). ``claim``: one this process already made. ``recorder``: what
        writes the result (default ``record``).
        """
        if run is None:
            run = self.load_run(key)
        if claim is None:
            claim = self.claim(key)
            if claim is None:
                return None
        if claim.try_number > 1:
            run.forget_xcoms(key.task_id, key.map_index)
        ti = TaskInstance(key.dag_id, key.task_id, key.run_id, key.map_index, S.RUNNING,
                          claim.try_number, claim.max_tries, claim.operator, claim.started,
                          hostname=_HOSTNAME, pid=os.getpid(), log_path=claim.log_path,
                          run=run)
        _make_folder(claim.log_path)
        task = self.dag_provider(key.dag_id).get_task(key.task_id)
        log_file = f"{claim.log_path}/attempt={claim.try_number}.log"
        with shipping_log(self.remote_log_uri, key, claim.try_number, Path(log_file),
                          interval=min(SHIP_INTERVAL, self.heartbeat_interval * 6 or 1)), \
                LogFile(log_file) as sink, self._heartbeat(key, on_heartbeat_lost):
            mlflow_run = TaskMlflowRun(self.store, run, ti, self.tracking)
            with capture_task_output(sink):  # once per try: it re-levels every logger
                outcome, xcoms, context = execute_try(run, ti, task, mlflow_run.lazy,
                                                      self.artifact_root)
                mlflow_run.finish(outcome.state)
                log_outcome(ti, outcome)
            result = TryResult.of(ti, outcome, xcoms)
            # Outside the capture: a driver's planning logs belong to the run, not this try.
            if (recorder or self.record)(result):
                run.remember_xcoms(key.task_id, key.map_index, xcoms)
                if result.state is S.SUCCESS and task.outlets:
                    self._record_outlets(key, task.outlets, sink)
            else:
                sink.write(f"task instance {key} changed state while running; outcome "
                           f"{outcome.state.value} not recorded\n")
            if callbacks_of(task, outcome):
                with capture_task_output(sink):
                    run_callbacks(task, outcome, context, ti)
        return result

    def _record_outlets(self, key: TIKey, outlets: list[Any], sink: LogFile) -> None:
        """One dataset event per outlet of a successful try (after its result is written:
        a crash in between loses the events, never records them for a failed try)."""
        self.store.record_dataset_events(
            {d.uri: d.extra for d in outlets},
            source=(key.dag_id, key.task_id, key.run_id, key.map_index))
        sink.write("dataset events recorded: " + ", ".join(d.uri for d in outlets) + "\n")

    @contextlib.contextmanager
    def _heartbeat(self, key: TIKey, on_lost: Callable[[], None] | None) -> Iterator[None]:
        """Mark the running instance alive every interval (never when it is 0)."""
        if self.heartbeat_interval <= 0:  # nothing watches heartbeats
            yield
            return
        token = HEARTBEATS.add(self.store, key, self.heartbeat_interval, on_lost)
        try:
            yield
        finally:
            HEARTBEATS.remove(token)


def _make_folder(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` in one system call when the parent exists."""
    try:
        os.mkdir(folder)
    except FileExistsError:  # a later try of the same instance
        pass
    except FileNotFoundError:  # the run's first try: its folders are made here
        os.makedirs(folder, exist_ok=True)
