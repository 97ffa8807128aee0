"""Admission: which ready task instances may be queued now, and queueing them.

A ready instance is queued in the store when its pool and its DAG (``max_active_tasks``)
have room and ``depends_on_past`` allows; otherwise it waits, in the order it became
ready, and is tried again when a slot may have freed. Retries wait for their time here too.
"""

from __future__ import annotations

import heapq
import logging
from datetime import UTC, datetime

from mlpipe.core.states import FINISHED_STATES
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.executors.base import Workload
from mlpipe.store.entities import TIKey

log = logging.getLogger("mlpipe.scheduler")


class AdmissionMixin:
    """The admission steps of ``DagRunDriver`` (they use its state; see there)."""

    #: rescheduled sensors by due time (``DagRunDriver._reschedules``)
    _reschedules: list[tuple[float, int, TIKey]]

    def _admit(self, now: float) -> None:
        """Queue due retries, then waiting instances in order, until a gate refuses."""
        while self._retries and (self.skip_retry_delays or self._retries[0][0] <= now):
            _, _, key = heapq.heappop(self._retries)
            self._queue_or_wait(key, S.UP_FOR_RETRY)
        while self._reschedules and self._reschedules[0][0] <= now:  # never skipped
            _, _, key = heapq.heappop(self._reschedules)
            self._queue_or_wait(key, S.UP_FOR_RESCHEDULE)
        kept: list[tuple[TIKey, str]] = []
        for _ in range(len(self._waiting)):
            if self._dag_full:
                break  # every later instance would be refused as well
            key, from_state = self._waiting.popleft()
            if not self._queue(key, [from_state]):
                kept.append((key, from_state))
        self._waiting.extendleft(reversed(kept))

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
        elif state is S.UP_FOR_RESCHEDULE:  # a sensor waiting for its next poke
            record = self.store.get_ti(key)
            self._schedule_poke(key, record.reschedule_date if record is not None else None)
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
            self.store.transition(key, from_states, S.FAILED, self._txn, error=message,
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
        self._progress(key, S.QUEUED)
        self._outbox.append(Workload(key, timeout, dict(task.resources), attempt))
        return True

    def _past_allows(self, key: TIKey) -> bool:
        """depends_on_past: the same task succeeded (or skipped) in the previous run."""
        states = self.store.previous_ti_states(self.dag.dag_id, self.run.logical_date,
                                               key.task_id)
        return not states or all(s in (S.SUCCESS, S.SKIPPED) for s in states)

    def _schedule_retry(self, key: TIKey, at: datetime | None) -> None:
        wait = (at - datetime.now(UTC)).total_seconds() if at is not None else 0.0
        heapq.heappush(self._retries, (self.clock() + max(0.0, wait), next(self._seq), key))

    def _schedule_poke(self, key: TIKey, at: datetime | None) -> None:
        """A rescheduled sensor: queue it again at ``at`` (its ``reschedule_date``).

        The due time is kept here, read once from the store, so a waiting sensor costs the
        database nothing until it is due (no polling query per sensor).
        """
        wait = (at - datetime.now(UTC)).total_seconds() if at is not None else 0.0
        heapq.heappush(self._reschedules, (self.clock() + max(0.0, wait), next(self._seq), key))

    def _next_retry_due(self) -> float:
        poke = self._reschedules[0][0] if self._reschedules else float("inf")
        if not self._retries:
            return poke
        return 0.0 if self.skip_retry_delays else min(poke, self._retries[0][0])
