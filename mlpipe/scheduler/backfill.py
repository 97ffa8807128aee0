"""Backfill: runs for every interval between two logical dates, whatever ``catchup`` says."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mlpipe.core.dag import DAG
from mlpipe.core.states import DagRunState
from mlpipe.core.timetables import DataInterval, intervals_between
from mlpipe.errors import DagDefinitionError
from mlpipe.executors.base import Executor
from mlpipe.runtime.models import DagRun
from mlpipe.scheduler.dagrun_driver import DagRunDriver, ProgressFn
from mlpipe.scheduler.leases import RunLease
from mlpipe.scheduler.runs import create_dag_run, parse_logical_date
from mlpipe.scheduler.service import Engine


@dataclass
class BackfillPlan:
    """What a backfill will do: intervals to run, and runs it leaves alone (with why)."""

    intervals: list[DataInterval]
    to_run: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def backfill_intervals(dag: DAG, start: datetime | str, end: datetime | str
                       ) -> list[DataInterval]:
    """Intervals whose logical date is in ``[start, end]``; a range outside the DAG's dates
    or a DAG without a schedule is one clear error."""
    first, last = parse_logical_date(start), parse_logical_date(end)
    if last < first:
        raise DagDefinitionError(f"backfill end {last.isoformat()} is before its start "
                                 f"{first.isoformat()}")
    if not dag.timetable.periodic:
        raise DagDefinitionError(f"DAG {dag.dag_id!r} has schedule {dag.schedule!r}: it has no "
                                 "intervals to backfill; trigger it instead")
    if dag.start_date is not None and last < dag.start_date:
        raise DagDefinitionError(
            f"backfill range ends {last.isoformat()}, before DAG {dag.dag_id!r} starts "
            f"({dag.start_date.isoformat()})")
    if dag.end_date is not None and first > dag.end_date:
        raise DagDefinitionError(
            f"backfill range starts {first.isoformat()}, after DAG {dag.dag_id!r} ends "
            f"({dag.end_date.isoformat()})")
    if dag.start_date is not None:
        first = max(first, dag.start_date)
    intervals = intervals_between(dag.timetable, first, last, end_date=dag.end_date)
    if not intervals:
        raise DagDefinitionError(f"no interval of DAG {dag.dag_id!r} ({dag.schedule}) starts "
                                 f"between {first.isoformat()} and {last.isoformat()}")
    return intervals


def prepare_backfill(engine: Engine, dag: DAG, intervals: list[DataInterval], *,
                     rerun_failed: bool = False, reset_dagruns: bool = False,
                     dry_run: bool = False) -> BackfillPlan:
    """Create the missing backfill runs and clear the ones to redo (nothing if ``dry_run``).

    Idempotent: a second backfill of the same range creates nothing and leaves successful
    runs alone (unless ``reset_dagruns``).
    """
    plan = BackfillPlan(intervals)
    for interval in intervals:
        # One run per logical date, as in Airflow: a scheduled run counts too.
        existing = engine.store.automated_run_at(dag.dag_id, interval.start)
        run_id = existing.run_id if existing else f"backfill__{interval.start.isoformat()}"
        if existing is None:
            if not dry_run:
                create_dag_run(engine.store, dag, logical_date=interval.start,
                               run_type="backfill", run_id=run_id, data_interval=interval)
            plan.to_run.append(run_id)
        elif reset_dagruns:
            if not dry_run:
                engine.clear(dag, run_id=run_id)
            plan.to_run.append(run_id)
        elif existing.state == DagRunState.FAILED and rerun_failed:
            if not dry_run:
                engine.clear(dag, run_id=run_id, only_failed=True)
            plan.to_run.append(run_id)
        elif existing.state in (DagRunState.SUCCESS, DagRunState.FAILED):
            plan.skipped[run_id] = f"already {existing.state}"
        else:
            plan.to_run.append(run_id)  # queued or interrupted: carry on
    return plan


def run_backfill(engine: Engine, dag: DAG, run_ids: list[str], *, max_active_runs: int,
                 executor: Executor | None = None, on_progress: ProgressFn | None = None,
                 on_run_done: Callable[[DagRun], None] | None = None) -> list[DagRun]:
    """Drive the runs, oldest first, at most ``max_active_runs`` at a time."""
    own = executor is None
    executor = executor or engine.make_executor()
    # a running scheduler leaves leased runs to us while we renew them; if we die, it takes
    # them over within one lease
    lease = RunLease(engine.store, [(dag.dag_id, r) for r in run_ids], lease=engine.lease,
                     holder=f"backfill:{socket.gethostname()}-{os.getpid()}")
    pending = list(run_ids)
    active: dict[str, DagRunDriver] = {}
    finished: list[DagRun] = []
    try:
        with lease:
            while pending or active:
                while pending and len(active) < max(1, max_active_runs):
                    run_id = pending.pop(0)
                    driver = DagRunDriver(
                        engine.store, dag, run_id, executor,
                        heartbeat_timeout=engine.settings.task_lease_s,
                        xcom_max_bytes=engine.settings.xcom_max_bytes, on_progress=on_progress)
                    active[run_id] = driver
                    driver.start()
                for run_id, driver in list(active.items()):
                    driver.step()
                    if driver.done:
                        run = driver.finish()
                        finished.append(run)
                        del active[run_id]
                        if on_run_done is not None:
                            on_run_done(run)
                if not active:
                    continue
                wait = min(d.wait_time() for d in active.values())
                for event in executor.poll(wait):
                    driver = active.get(event.key.run_id)
                    if driver is not None:
                        driver.on_event(event)
    finally:
        if own:
            executor.shutdown()
    return finished
