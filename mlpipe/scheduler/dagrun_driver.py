"""Driving one DAG run to its end with an executor, event by event.

The pure ``RunPlanner`` says what is ready; this loop queues it in the store, hands it to
the executor, and feeds each finished instance back the moment the executor reports it (no
polling tick). It starts from whatever the store holds, so the same loop runs a fresh run,
resumes one after a crash, or re-runs cleared task instances: finished instances are
replayed, instances still marked running are watched through their heartbeat.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.mapping import MappedOperator
from mlpipe.core.operator import BaseOperator
from mlpipe.core.params import resolve_params
from mlpipe.core.planning import Action, RunPlanner
from mlpipe.core.retries import retry_delay_for
from mlpipe.core.serde import deserialize
from mlpipe.core.states import FINISHED_STATES, DagRunState
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.executors.base import Executor, TaskEvent, Workload
from mlpipe.runtime.expansion import ExpansionError, expansion_length, expansion_of
from mlpipe.runtime.log_paths import log_dir
from mlpipe.runtime.models import SKIP_KEY, DagRun
from mlpipe.runtime.try_runner import TryResult
from mlpipe.store.entities import TaskInstanceRecord, TIKey
from mlpipe.store.metadata_store import MetadataStore
from mlpipe.tracking.task_runs import end_parent_run

log = logging.getLogger("mlpipe.scheduler")

ProgressFn = Callable[[TIKey, str], None]


class DagRunDriver:
    """Runs (or resumes) one DAG run with ``executor`` until every instance has finished."""

    def __init__(self, store: MetadataStore, dag: DAG, run_id: str, executor: Executor, *,
                 heartbeat_timeout: float = 30.0, skip_retry_delays: bool = False,
                 xcom_max_bytes: int = 48 * 1024, on_progress: ProgressFn | None = None,
                 cache_xcoms: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.dag = dag
        self.executor = executor
        self.heartbeat_timeout = heartbeat_timeout
        self.skip_retry_delays = skip_retry_delays
        self.on_progress = on_progress
        self.clock = clock
        record = store.get_run(dag.dag_id, run_id)
        self.run = DagRun.from_record(record, dag, store,
                                      params=resolve_params(dag.params, record.conf),
                                      xcom_max_bytes=xcom_max_bytes)
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
            if state == "queued":  # queued by a driver that is gone: never started
                self.store.transition(self._key(task_id, map_index), ["queued"], "scheduled")
        if any(state == "queued" for _, _, state in states):
            states = self.store.ti_states(self.dag.dag_id, self.run.run_id)
        self._states = {(task_id, map_index): state for task_id, map_index, state in states}
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
            self._inflight or self._adopted or self._retries or self._waiting
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

    def _admit(self, now: float) -> None:
        """Queue due retries, then waiting instances in order, until a gate refuses."""
        while self._retries and (self.skip_retry_delays or self._retries[0][0] <= now):
            _, _, key = heapq.heappop(self._retries)
            self._queue_or_wait(key, "up_for_retry")
        kept: list[tuple[TIKey, str]] = []
        for _ in range(len(self._waiting)):
            if self._dag_full:
                break  # every later instance would be refused as well
            key, from_state = self._waiting.popleft()
            if not self._queue(key, [from_state]):
                kept.append((key, from_state))
        self._waiting.extendleft(reversed(kept))

    def _check_run_timeout(self) -> None:
        timeout = self.dag.dagrun_timeout
        if timeout is None or self.run.start_date is None:
            return
        if datetime.now(UTC) - self.run.start_date < timeout:
            return
        log.error("run %s exceeded dagrun_timeout %s: stopping it", self.run.run_id, timeout)
        for record in self.store.list_tis(self.dag.dag_id, self.run.run_id):
            state = S(record.state)
            if state in (S.RUNNING, S.QUEUED):
                self.executor.kill(record.key)
                self.store.transition(record.key, [record.state], "failed",
                                      error=f"dagrun_timeout {timeout} exceeded",
                                      end_date=datetime.now(UTC))
            elif state not in FINISHED_STATES:
                self.store.transition(record.key, [record.state], "skipped")
        self._inflight.clear()
        self._adopted.clear()
        self._retries.clear()
        self._waiting.clear()
        self._outbox.clear()
        self._deferred.clear()
        self._timed_out = True
        self._done = True

    def _check_interval(self) -> float:
        return max(0.05, self.heartbeat_timeout / 3)

    def _next_retry_due(self) -> float:
        if not self._retries:
            return float("inf")
        return 0.0 if self.skip_retry_delays else self._retries[0][0]

    # -- actions -----------------------------------------------------------------------------

    def _handle(self, action: Action) -> None:
        if action.kind == "run":
            self._start_instance(action.task_id, action.map_index)
        elif action.kind == "expand_task":
            self._expand_task(action.task_id)
        else:
            self._expand_group(action.group_id)

    def _start_instance(self, task_id: str, map_index: int) -> None:
        key = self._key(task_id, map_index)
        if (task_id, map_index) in self._created:
            state = S.NONE
        else:
            known = self._states.get((task_id, map_index))
            if known is None:
                record = self.store.get_ti(key)
                known = record.state if record is not None else S.NONE.value
            state = S(known)
        if state in FINISHED_STATES:  # replay what an earlier driver already saw finish
            self._finished(key, state)
        elif state in (S.RUNNING, S.QUEUED):
            self._adopted.add(key)
        elif state is S.UP_FOR_RETRY:
            record = self.store.get_ti(key)
            self._schedule_retry(key, record.next_retry_at if record is not None else None)
        else:
            self._queue_or_wait(key, state.value)

    def _queue_or_wait(self, key: TIKey, from_state: str) -> None:
        if not self._queue(key, [from_state]):
            self._waiting.append((key, from_state))

    def _queue(self, key: TIKey, from_states: list[str]) -> bool:
        """Queue ``key`` (in the current batch) for submission; False if it must wait."""
        if not self.accepting:
            return False
        task = self.dag.get_task(key.task_id)
        if task.depends_on_past and not self._past_allows(key):
            return False
        if self._dag_full or (task.pool is not None and task.pool in self._full_pools):
            return False  # no slot freed since the last refusal
        limit = self.dag.max_active_tasks
        outcome = self.store.queue(key, from_states, pool=task.pool,
                                   dag_limit=limit if limit and limit > 0 else None,
                                   conn=self._txn)
        if outcome in ("pool_full", "dag_full"):
            if outcome == "dag_full":
                self._dag_full = True
            elif task.pool is not None:
                self._full_pools.add(task.pool)
            return False
        if outcome == "no_pool":
            message = (f"pool {task.pool!r} does not exist; create it with "
                       f"'mlpipe pools set {task.pool} SLOTS'")
            self.store.transition(key, from_states, "failed", self._txn, error=message,
                                  end_date=datetime.now(UTC))
            log.error("%s: %s", key, message)
            self._finished(key, S.FAILED)
            return True
        if outcome == "moved":
            record = self.store.get_ti(key)
            if record is not None and S(record.state) in FINISHED_STATES:
                self._finished(key, S(record.state))
            else:
                self._adopted.add(key)
            return True
        timeout = task.execution_timeout.total_seconds() if task.execution_timeout else None
        attempt = next(self._seq)
        self._inflight[key] = attempt
        self._progress(key, "queued")
        self._outbox.append(Workload(key, timeout, dict(task.resources), attempt))
        return True

    def _past_allows(self, key: TIKey) -> bool:
        """depends_on_past: the same task succeeded (or skipped) in the previous run."""
        states = self.store.previous_ti_states(self.dag.dag_id, self.run.logical_date,
                                               key.task_id)
        return not states or all(s in ("success", "skipped") for s in states)

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
        elif state in FINISHED_STATES:
            self._finished(key, state)

    def _finished(self, key: TIKey, state: S) -> None:
        if state is S.SUCCESS and _may_skip(self.dag.get_task(key.task_id)):
            skip = self.store.get_xcoms(key.dag_id, key.run_id, key.task_id, SKIP_KEY,
                                        [key.map_index])
            if skip:
                self._ready.extend(self.planner.skip(key.task_id, key.map_index,
                                                     deserialize(skip[key.map_index])))
        self._ready.extend(self.planner.finished(key.task_id, key.map_index, state))

    def _schedule_retry(self, key: TIKey, at: datetime | None) -> None:
        wait = (at - datetime.now(UTC)).total_seconds() if at is not None else 0.0
        heapq.heappush(self._retries, (self.clock() + max(0.0, wait), next(self._seq), key))

    def _fail_lost(self, record: TaskInstanceRecord, reason: str) -> S | None:
        """Move a task instance whose process is gone to up_for_retry or failed."""
        task = self.dag.get_task(record.task_id)
        retry = record.try_number <= record.max_tries and record.try_number > 0
        target = S.UP_FOR_RETRY if retry else S.FAILED
        now = datetime.now(UTC)
        next_retry = None
        if retry:
            next_retry = now + retry_delay_for(
                record.try_number, retry_delay=task.retry_delay,
                exponential_backoff=task.retry_exponential_backoff,
                max_retry_delay=task.max_retry_delay)
        if not self.store.transition(record.key, [record.state], target.value, end_date=now,
                                     error=reason, next_retry_at=next_retry):
            return None
        log.error("%s: %s; marked %s", record.key, reason, target.value)
        self._append_log(record, f"ERROR - {reason}; marked {target.value}\n")
        if target is S.UP_FOR_RETRY:
            self._schedule_retry(record.key, next_retry)
            self._progress(record.key, target.value)
            return None
        return target

    @staticmethod
    def _append_log(record: TaskInstanceRecord, text: str) -> None:
        if record.log_path and record.try_number:
            from pathlib import Path

            path = Path(record.log_path) / f"attempt={record.try_number}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)

    def _reap_dead(self) -> None:
        """Instances marked running whose heartbeat stopped: their process is gone."""
        watched = set(self._inflight) | self._adopted
        if not watched:
            return
        stale = self.store.stale_running(timedelta(seconds=self.heartbeat_timeout))
        for record in stale:
            if record.key not in watched:
                continue
            self.executor.kill(record.key)
            state = self._fail_lost(record, f"no heartbeat for {self.heartbeat_timeout:g} s "
                                            "(the task process died or hung)")
            self._inflight.pop(record.key, None)
            self._adopted.discard(record.key)
            if state is not None:
                self._finished(record.key, state)
        self._poll_adopted()

    def _poll_adopted(self) -> None:
        """Instances running elsewhere (found at start): pick up those that finished."""
        for key in list(self._adopted):
            record = self.store.get_ti(key)
            if record is not None and S(record.state) not in (S.RUNNING, S.QUEUED):
                self._adopted.discard(key)
                self._apply(key, S(record.state), record)

    # -- mapping -----------------------------------------------------------------------------

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
        self.store.transition(key, ["none", "scheduled"], "failed", error=message,
                              end_date=datetime.now(UTC), try_number=1,
                              log_path=str(folder) if folder else None)
        log.error("%s", message)

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

    def finish(self) -> DagRun:
        """Record the run's final state (and call the DAG's callback)."""
        return self._finish()

    def _finish(self) -> DagRun:
        self._sync_decided()
        states = self.store.ti_states(self.dag.dag_id, self.run.run_id)
        leaves = {t.task_id for t in self.dag.leaves}
        failed_leaf = any(state in ("failed", "upstream_failed")
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
        if callback is not None:
            reason = "success" if state is DagRunState.SUCCESS else "task_failure"
            try:
                callback({"dag": self.dag, "dag_run": self.run, "run_id": self.run.run_id,
                          "reason": reason, "params": self.run.params})
            except Exception:
                log.exception("DAG callback failed")
        if self.run.xcom_read_through:  # handed to the caller: read the store from now on
            self.run.xcom_cache, self.run.xcom_read_through = None, False
        return self.run


def _may_skip(task: BaseOperator) -> bool:
    """Whether the task's operator can skip others (a branch): only then is a skip stored."""
    cls = task.operator_class if isinstance(task, MappedOperator) else type(task)
    return cls.downstream_to_skip is not BaseOperator.downstream_to_skip
