"""Driving one DAG run to its end with an executor, event by event.

The pure ``RunPlanner`` says what is ready; this loop queues it in the store, hands it to
the executor, and feeds each finished instance back the moment the executor reports it (no
polling tick). It starts from whatever the store holds, so the same loop runs a fresh run,
resumes one after a crash, or re-runs cleared task instances: finished instances are
replayed, instances still marked running are watched through their heartbeat.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.mapping import MappedOperator
from mlpipe.core.operator import BaseOperator
from mlpipe.core.planning import Action, RunPlanner
from mlpipe.core.states import FINISHED_STATES, DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.executors.base import Executor, TaskEvent, Workload
from mlpipe.runtime.models import DagRun
from mlpipe.runtime.try_runner import TryResult
from mlpipe.scheduler.run_admission import AdmissionMixin
from mlpipe.scheduler.run_deadlines import DeadlineMixin
from mlpipe.scheduler.run_end import RunEndMixin
from mlpipe.scheduler.run_expansion import ExpansionMixin
from mlpipe.scheduler.run_liveness import LivenessMixin
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.store.protocols import DriverStore

log = logging.getLogger("mlpipe.scheduler")

ProgressFn = Callable[[TIKey, str], None]


class DagRunDriver(AdmissionMixin, LivenessMixin, ExpansionMixin, RunEndMixin, DeadlineMixin):
    """Runs (or resumes) one DAG run with ``executor`` until every instance has finished."""

    def __init__(self, store: DriverStore, dag: DAG, run_id: str, executor: Executor, *,
                 heartbeat_timeout: float = 30.0, skip_retry_delays: bool = False,
                 xcom_max_bytes: int = 48 * 1024, on_progress: ProgressFn | None = None,
                 cache_xcoms: bool = False, check_deadlines: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.dag = dag
        self.executor = executor
        self.heartbeat_timeout = heartbeat_timeout
        self.skip_retry_delays = skip_retry_delays
        self.on_progress = on_progress
        self.clock = clock
        #: record missed task SLAs and the DAG's deadline (the scheduler's runs)
        self.check_deadlines = check_deadlines
        self._sla_due: dict[str, datetime] = {}
        self._run_deadline: datetime | None = None
        record = store.get_run(dag.dag_id, run_id)
        self.run = DagRun.from_record(record, dag, store, xcom_max_bytes=xcom_max_bytes)
        if cache_xcoms:  # the caller vouches that the store started empty (dag.test())
            self.run.xcom_cache = {}
        elif executor.in_process:  # every try writes its XComs through self.run
            self.run.xcom_cache, self.run.xcom_read_through = {}, True
        self.planner = RunPlanner(dag)
        self._ready: deque[Action] = deque()
        #: expansions put off until the transaction that found them ready has committed
        self._deferred: deque[Action] = deque()
        #: queued in the store, to hand to the executor once that write has committed
        self._outbox: deque[Workload] = deque()
        #: the write transaction this driver's queueing goes into right now (batching)
        self._txn: Any = None
        #: finished instances already planned inside their try's final transaction
        self._handed: dict[TIKey, int] = {}
        #: the workload the executor claimed ahead (``Executor.prepare``): submitted next
        self._prepared: Workload | None = None
        #: instances this driver created by expanding a mapped task: known to be ``none``
        self._created: set[tuple[str, int]] = set()
        self._retries: list[tuple[float, int, TIKey]] = []
        #: sensors in up_for_reschedule, by when they poke next (they hold no slot)
        self._reschedules: list[tuple[float, int, TIKey]] = []
        self._seq = itertools.count()
        self._inflight: dict[TIKey, int] = {}  # submitted to our executor: key -> attempt
        self._adopted: set[TIKey] = set()  # running elsewhere (found after a restart)
        self._synced = 0
        #: states the store held at start, by (task_id, map_index)
        self._states: dict[tuple[str, int], str] = {}
        #: instances that may not start yet (pool full, DAG at max_active_tasks, past run),
        #: in the order they became ready
        self._waiting: deque[tuple[TIKey, str]] = deque()
        self.waiting_poll = 0.5
        self._next_check = 0.0
        self._done = False
        self._timed_out = False
        #: False while a scheduler shuts down: nothing new is queued
        self.accepting = True
        self._next_adopted_check = 0.0
        #: a gate refused since the last event: later instances wait without asking again
        self._dag_full = False
        self._full_pools: set[str] = set()
        self._next_gate_check = 0.0
        self.logs_root = executor.env.logs_root if executor.env is not None else None

    def _key(self, task_id: str, map_index: int) -> TIKey:
        return TIKey(self.dag.dag_id, self.run.run_id, task_id, map_index)

    # -- the loop ----------------------------------------------------------------------------

    def execute(self) -> DagRun:
        """Run until done with this driver's executor; returns the run with its final state."""
        # Tries in this process allocate many short-lived objects, and a full collection
        # walks the whole heap that was there before (SQLAlchemy, the DAGs): ~60 ms, about
        # once per 1,000 tasks. That heap outlives the run: keep it out of the collector's
        # way until the run ends (gc.freeze; new objects are collected as usual).
        freeze = self.executor.in_process and gc.isenabled()
        if freeze:
            gc.freeze()
        try:
            self.start()
            while not self.done:
                for event in self.executor.poll(self.wait_time()):
                    self.on_event(event)
                self.step()
            return self.finish()
        finally:
            if freeze:
                gc.unfreeze()

    # -- the steps a loop (this driver's own, or a scheduler's over many runs) calls ---------

    def start(self) -> None:
        """Mark the run running and act on everything the store says is ready."""
        env = self.executor.env
        if env is not None:
            env.runs[(self.dag.dag_id, self.run.run_id)] = self.run
            if self.store.batches_writes:
                env.recorders[(self.dag.dag_id, self.run.run_id)] = self.record_try
        started = self.run.start_date or datetime.now(UTC)
        self.run.start_date = started
        self.store.set_run_state(self.dag.dag_id, self.run.run_id, DagRunState.RUNNING.value,
                                 start_date=started, end_date=None)
        states = self.store.ti_states(self.dag.dag_id, self.run.run_id)
        for task_id, map_index, state in states:
            if state == S.QUEUED:  # queued by a driver that is gone: never started
                self.store.transition(self._key(task_id, map_index), [S.QUEUED], S.SCHEDULED)
        if any(state == S.QUEUED for _, _, state in states):
            states = self.store.ti_states(self.dag.dag_id, self.run.run_id)
        self._states = {(task_id, map_index): state for task_id, map_index, state in states}
        self._watch_deadlines()
        self._ready.extend(self.planner.start())
        self._next_check = self.clock() + self._check_interval()
        self._drain()

    @property
    def inflight(self) -> list[TIKey]:
        return list(self._inflight)

    @property
    def busy(self) -> bool:
        """True while task instances of this run are running or queued somewhere."""
        return bool(self._inflight or self._adopted)

    @property
    def done(self) -> bool:
        return self._done or self.planner.complete or not (
            self._inflight or self._adopted or self._retries or self._reschedules
            or self._waiting
            or self._outbox or self._deferred)

    def wait_time(self) -> float:
        """Seconds until this driver has something to do without an executor event."""
        if self._outbox or self._deferred or self._ready:
            return 0.0
        due = min(self._next_check, self._next_retry_due())
        if self._waiting:
            due = min(due, self.clock() + self.waiting_poll)
        if self._adopted:
            due = min(due, self._next_adopted_check)
        if self._sla_due or self._run_deadline is not None:
            due = min(due, self.clock() + self._deadline_wait())
        return max(0.0, due - self.clock())

    def on_event(self, event: TaskEvent) -> None:
        """An executor reports one of this run's task instances as done."""
        self._on_event(event)
        self._drain()

    def step(self) -> None:
        """Time-driven work: due retries, waiting instances, dead tasks, the run's timeout."""
        now = self.clock()
        if self._waiting and now >= self._next_gate_check:  # others may have freed slots
            self._dag_full = False
            self._full_pools.clear()
            self._next_gate_check = now + self.waiting_poll
        if (self._waiting and not self._dag_full) or self._next_retry_due() <= now:
            self._in_transaction(lambda: self._admit(now))
        if self._adopted and now >= self._next_adopted_check:
            self._poll_adopted()
            self._next_adopted_check = now + 0.5
        if now >= self._next_check:
            self._periodic(now)
        if (self._sla_due or self._run_deadline is not None) and self._deadline_wait() <= 0:
            self._check_deadlines()
        self._drain()

    def _periodic(self, now: float) -> None:
        self._reap_dead()
        self._check_run_timeout()
        self._next_check = now + self._check_interval()

    def record_try(self, result: TryResult, attempt: int) -> bool:
        """Write the result of a try that ran in this process, and plan what follows.

        The in-process executor's runner calls this instead of writing the result itself:
        in one transaction (opened here) the try's state and XComs, the downstream instances
        it made ready (queued, the next one claimed ahead) and the skips and upstream
        failures it decided. Expansions and the submission of what was queued wait until
        the transaction has committed. False: the instance was no longer running.
        """
        store = self.store
        with store.try_transaction(result.key) as conn:
            if not store.finish_try(result.key, to_state=result.state.value,
                                    xcoms=result.xcoms, conn=conn, **result.row_values()):
                return False
            self._hand_off(conn, result.key, attempt, result.state.value, result.skip)
        return True

    def _hand_off(self, conn: Any, key: TIKey, attempt: int, state: str,
                  skip: tuple[str, ...]) -> bool:
        """Plan after a try, inside the transaction that records its result.

        Returns False (nothing done; the executor's event is handled as usual) for a try
        this driver did not submit or that will be retried.
        """
        finished = S(state)
        if self._inflight.get(key) != attempt or finished not in FINISHED_STATES:
            return False
        self._handed[key] = attempt
        self._txn = conn
        try:
            self._progress(key, state)
            if finished is S.SUCCESS and skip:
                self._ready.extend(self.planner.skip(key.task_id, key.map_index, skip))
            self._ready.extend(self.planner.finished(key.task_id, key.map_index, finished))
            self._dag_full = False  # this try's slot is free now
            self._full_pools.clear()
            self._admit(self.clock())
            self._plan()
            if self._outbox:  # what runs next starts in this same transaction
                self._prepared = self._outbox[0]
                self.executor.prepare(conn, self._prepared)
        finally:
            self._txn = None
        return True

    def _drain(self) -> None:
        """Act on what is ready: queue it (one transaction), expand, then submit."""
        while self._ready or self._deferred or self._unsynced():
            if self._unsynced() or any(a.kind == "run" for a in self._ready):
                self._in_transaction(self._plan)
            else:
                self._deferred.extend(self._ready)
                self._ready.clear()
            while self._deferred:
                self._handle(self._deferred.popleft())
        self._flush_outbox()

    def _plan(self) -> None:
        """Queue ready instances and record decided states; set expansions aside."""
        while self._ready:
            action = self._ready.popleft()
            if action.kind == "run":
                self._start_instance(action.task_id, action.map_index)
            else:
                self._deferred.append(action)
        self._sync_decided()

    def _in_transaction(self, work: Callable[[], object]) -> None:
        """Run ``work`` with its queueing batched in one write transaction (if possible)."""
        if self._txn is not None or not self.store.batches_writes:
            work()
            return
        with self.store.transaction() as conn:
            self._txn = conn
            try:
                work()
            finally:
                self._txn = None

    def _flush_outbox(self) -> None:
        """Submit what was queued before this call, and at once whatever was claimed ahead.

        An in-process executor's tries queue (and claim ahead) more while this runs; a
        claimed instance must not wait for other work, so the loop goes on with it, doing the
        time-driven checks (dead tasks, the run's timeout) when they are due.
        """
        count = len(self._outbox)
        while self._outbox and (count > 0 or self._outbox[0] is self._prepared):
            count -= 1
            self.executor.submit(self._outbox.popleft())
            now = self.clock()
            if now >= self._next_check:
                self._periodic(now)

    def _unsynced(self) -> bool:
        return self._synced < len(self.planner.finished_states)

    def _check_interval(self) -> float:
        return max(0.05, self.heartbeat_timeout / 3)


    # -- actions -----------------------------------------------------------------------------

    def _handle(self, action: Action) -> None:
        if action.kind == "run":
            self._start_instance(action.task_id, action.map_index)
        elif action.kind == "expand_task":
            self._expand_task(action.task_id)
        else:
            self._expand_group(action.group_id)

    def _on_event(self, event: TaskEvent) -> None:
        self._dag_full = False  # a slot may have freed: try the gates again
        self._full_pools.clear()
        if self._inflight.get(event.key) != event.attempt:
            return  # an abandoned try's process (already reaped) ended late: not news
        del self._inflight[event.key]
        if self._handed.pop(event.key, None) == event.attempt:
            return  # planned inside the try's final transaction (record_try)
        if event.state is not None:  # an in-process executor saw the outcome itself
            state = S(event.state)
            self._progress(event.key, state.value)
            if state is S.SUCCESS:
                if event.skip:
                    self._ready.extend(self.planner.skip(event.key.task_id,
                                                         event.key.map_index, event.skip))
                self._ready.extend(self.planner.finished(event.key.task_id,
                                                         event.key.map_index, state))
                return
        record = self.store.get_ti(event.key)
        if record is None:
            return
        state = S(record.state)
        if state in (S.RUNNING, S.QUEUED) and not event.claimed:
            self._adopted.add(event.key)  # another process holds it: watch it finish
            return
        if state in (S.NONE, S.SCHEDULED):
            # Another driver reset it before our worker could claim it: queue it again.
            self._queue_or_wait(event.key, state.value)
            return
        if state in (S.RUNNING, S.QUEUED):
            # The worker ended without recording an outcome (killed, crashed, OOM).
            reason = f"task process exited with code {event.exit_code} without a result"
            state = self._fail_lost(record, reason)
            if state is None:
                return
        self._apply(event.key, state, record)

    def _apply(self, key: TIKey, state: S, record: TaskInstanceRecord | None) -> None:
        self._progress(key, state.value)
        if state is S.UP_FOR_RETRY:
            self._schedule_retry(key, record.next_retry_at if record else None)
        elif state is S.UP_FOR_RESCHEDULE:
            self._schedule_poke(key, record.reschedule_date if record else None)
        elif state in FINISHED_STATES:
            self._finished(key, state)

    def _finished(self, key: TIKey, state: S) -> None:
        if state is S.SUCCESS and _may_skip(self.dag.get_task(key.task_id)):
            record = self.store.get_ti(key)  # a branch's choice is part of its result
            if record is not None and record.skip_downstream:
                self._ready.extend(self.planner.skip(key.task_id, key.map_index,
                                                     json.loads(record.skip_downstream)))
        self._ready.extend(self.planner.finished(key.task_id, key.map_index, state))

    # -- bookkeeping ---------------------------------------------------------------------------

    def _sync_decided(self) -> None:
        """Write states the planner decided (skips, upstream failures) in one transaction."""
        decided = self.planner.finished_states[self._synced:]
        self._synced = len(self.planner.finished_states)
        by_state: dict[str, list[TIKey]] = {}
        for task_id, map_index, state in decided:
            if state in (S.SKIPPED, S.UPSTREAM_FAILED):
                by_state.setdefault(state.value, []).append(self._key(task_id, map_index))
        for state, keys in by_state.items():
            self.store.set_tis_state(keys, state, unless=[s.value for s in FINISHED_STATES],
                                     conn=self._txn)
            for key in keys:
                self._progress(key, state)

    def _progress(self, key: TIKey, state: str) -> None:
        if self.on_progress is not None:
            self.on_progress(key, state)




def _may_skip(task: BaseOperator) -> bool:
    """Whether the task's operator can skip others (a branch): only then is a skip stored."""
    cls = task.operator_class if isinstance(task, MappedOperator) else type(task)
    return cls.downstream_to_skip is not BaseOperator.downstream_to_skip
