"""Liveness: task instances whose process died, instances running elsewhere, and the
run's own timeout.

A try marks itself alive (heartbeat); one whose heartbeat stopped for a lease is failed or
retried here, and one found running at start (adopted) is watched until it ends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlpipe.core.retries import retry_delay_for
from mlpipe.core.states import FINISHED_STATES
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.store.entities import TaskInstanceRecord, TIKey

log = logging.getLogger("mlpipe.scheduler")


class LivenessMixin:
    """The liveness steps of ``DagRunDriver`` (they use its state; see there)."""

    #: rescheduled sensors by due time (``DagRunDriver._reschedules``)
    _reschedules: list[tuple[float, int, TIKey]]

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
                self.store.transition(record.key, [record.state], S.FAILED,
                                      error=f"dagrun_timeout {timeout} exceeded",
                                      end_date=datetime.now(UTC))
            elif state not in FINISHED_STATES:
                self.store.transition(record.key, [record.state], S.SKIPPED)
        self._inflight.clear()
        self._adopted.clear()
        self._retries.clear()
        self._reschedules.clear()
        self._waiting.clear()
        self._outbox.clear()
        self._deferred.clear()
        self._timed_out = True
        self._done = True

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
