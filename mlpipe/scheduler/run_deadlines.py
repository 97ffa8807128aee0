"""Deadlines of a run the scheduler drives: task ``sla`` and DAG ``deadline``.

A task's SLA is missed when it has not succeeded ``sla`` after its run's data interval
ended (Airflow's reference point; backfill runs are not checked). A DAG's deadline is
missed when a run has not finished ``deadline`` after it started running. A miss is
recorded once in ``sla_misses`` (insert-once: a restarted or second scheduler finds it
recorded and stays quiet) and then fires the DAG's ``on_sla_miss_callback`` in a thread,
so a slow notifier never holds up the loop. The driver keeps the due times in memory: no
query until a deadline has passed.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlpipe.core.states import FINISHED_STATES
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.runtime.callbacks import as_list, invoke_callbacks

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.runtime.models import DagRun
    from mlpipe.store.protocols import DriverStore

log = logging.getLogger("mlpipe.scheduler")

TASK_SLA = "task_sla"
DAG_DEADLINE = "dag_deadline"
_FINISHED = {s.value for s in FINISHED_STATES}


class DeadlineMixin:
    """The deadline steps of ``DagRunDriver`` (they use its state; see there)."""

    dag: DAG
    run: DagRun
    store: DriverStore
    check_deadlines: bool
    _sla_due: dict[str, datetime]
    _run_deadline: datetime | None

    def _watch_deadlines(self) -> None:
        """Note the SLAs of this run's tasks (called once the run started)."""
        self._sla_due: dict[str, datetime] = {}
        self._run_deadline: datetime | None = None
        if not self.check_deadlines or self.run.run_type == "backfill":
            return
        base = self.run.data_interval_end or self.run.logical_date
        for task in self.dag.tasks:
            sla = getattr(task, "sla", None)  # a mapped task's is its unbuilt argument
            if isinstance(sla, int | float) and not isinstance(sla, bool):
                sla = timedelta(seconds=sla)
            if isinstance(sla, timedelta):
                self._sla_due[task.task_id] = base + sla
        if self.dag.deadline is not None and self.run.start_date is not None:
            self._run_deadline = self.run.start_date + self.dag.deadline

    def _next_deadline(self) -> datetime | None:
        dues = list(self._sla_due.values())
        if self._run_deadline is not None:
            dues.append(self._run_deadline)
        return min(dues) if dues else None

    def _deadline_wait(self) -> float:
        """Seconds until the next deadline to check (inf: none)."""
        due = self._next_deadline()
        if due is None:
            return float("inf")
        return max(0.0, (due - datetime.now(UTC)).total_seconds())

    def _check_deadlines(self, *, ended: datetime | None = None) -> None:
        """Record the deadlines passed by now (or by ``ended``, the run's end)."""
        now = ended or datetime.now(UTC)
        due = sorted(t for t, at in self._sla_due.items() if at <= now)
        if due:
            records = self.store.list_tis(self.dag.dag_id, self.run.run_id, task_ids=due)
            for task_id in due:
                deadline = self._sla_due.pop(task_id)
                mine = [r for r in records if r.task_id == task_id]
                if any(_late(r, deadline) for r in mine):
                    self._missed(TASK_SLA, task_id, deadline)
        if self._run_deadline is not None and self._run_deadline <= now:
            deadline, self._run_deadline = self._run_deadline, None
            if ended is None or ended > deadline:
                self._missed(DAG_DEADLINE, None, deadline)

    def _missed(self, kind: str, task_id: str | None, deadline: datetime) -> None:
        recorded = self.store.record_sla_miss(self.dag.dag_id, self.run.run_id, task_id,
                                              kind=kind, deadline_at=deadline,
                                              recorded_at=datetime.now(UTC))
        if not recorded:
            return  # recorded (and notified) before: by this scheduler before a restart
        what = f"task {task_id!r}" if task_id else "the run"
        log.warning("SLA miss in %s/%s: %s missed its %s (due %s)", self.dag.dag_id,
                    self.run.run_id, what, "sla" if task_id else "deadline",
                    deadline.isoformat())
        callbacks = as_list(self.dag.on_sla_miss_callback)
        if not callbacks:
            return
        context: dict[str, Any] = {
            "dag": self.dag, "dag_run": self.run, "dag_id": self.dag.dag_id,
            "run_id": self.run.run_id, "task_id": task_id, "params": self.run.params,
            "reason": kind, "state": "sla_miss",
            "sla_miss": {"kind": kind, "task_id": task_id, "deadline_at": deadline}}
        threading.Thread(target=invoke_callbacks, args=(callbacks, context),
                         kwargs={"what": "on_sla_miss_callback", "logger": log},
                         name="sla-miss-callback", daemon=True).start()


def _late(record: Any, deadline: datetime) -> bool:
    """Not succeeded by ``deadline``: still unfinished, or succeeded after it."""
    if record.state not in _FINISHED:
        return True
    return record.state == S.SUCCESS and record.end_date is not None \
        and record.end_date > deadline
