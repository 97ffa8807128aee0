"""``mlpipe scheduler``: creates due runs and drives them, crash-safe and HA-safe.

Each loop: re-import changed DAG files, create the runs that became due, take (lease) runs
that no live scheduler drives, step every driven run, then sleep until the next thing is
due: an executor event, a retry, a run becoming due, a lease to renew or the folder scan.
All state lives in the database: a scheduler killed at any point is replaced by another
that carries on. Several schedulers may share a PostgreSQL database (runs are leased with
``FOR UPDATE SKIP LOCKED``, task instances are claimed with compare-and-set); on SQLite a
file lock allows exactly one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.states import DagRunState
from mlpipe.core.timetables import DatasetTimetable, due_intervals, next_due_at
from mlpipe.errors import RunExistsError, StoreError
from mlpipe.executors.base import Executor
from mlpipe.runtime.dagbag import DagFolderWatcher
from mlpipe.scheduler.dagrun_driver import DagRunDriver, ProgressFn
from mlpipe.scheduler.dataset_polling import DatasetPoller
from mlpipe.scheduler.dataset_triggers import (
    consumed_datasets,
    create_dataset_runs,
    record_dataset_references,
)
from mlpipe.scheduler.runs import create_dag_run, record_dags, record_listing
from mlpipe.scheduler.service import Engine

log = logging.getLogger("mlpipe.scheduler")


class SchedulerLock:
    """On SQLite only one scheduler may run: an exclusive lock file beside the database."""

    def __init__(self, database_url: str, home: Path) -> None:
        self._lock: Any = None
        if not database_url.startswith("sqlite"):
            return
        path = database_url.split("///", 1)[-1]
        target = Path(path if path and path != ":memory:" else home / "mlpipe.db")
        self.path = target.with_name(target.name + ".scheduler.lock")

    def acquire(self) -> None:
        if not hasattr(self, "path") or self._lock is not None:
            return
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StoreError(
                f"another scheduler is running on this SQLite database (lock {self.path}); "
                "SQLite allows one scheduler: stop it, or use PostgreSQL to run several"
            ) from None
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def held_elsewhere(self) -> bool:
        """True if another process holds the lock (a scheduler runs on this database)."""
        if not hasattr(self, "path"):
            return False
        try:
            self.acquire()
        except StoreError:
            return True
        self.release()
        return False


class Scheduler:
    """The scheduling loop over one engine (settings, store, DAGs folder)."""

    def __init__(self, engine: Engine, *, executor: Executor | None = None,
                 scheduler_id: str | None = None, lease: timedelta = timedelta(seconds=15),
                 scan_interval: float = 2.0, grace_period: float = 30.0,
                 on_progress: ProgressFn | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.store = engine.store
        self.executor = executor or engine.make_executor()
        self.id = scheduler_id or \
            f"scheduler:{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.scan_interval = scan_interval
        self.grace_period = grace_period
        self.on_progress = on_progress
        self.now = now
        self.watcher = DagFolderWatcher(engine.settings.dags_folder,
                                        parse_timeout=engine.settings.dag_parse_timeout_s)
        self.drivers: dict[tuple[str, str], DagRunDriver] = {}
        self.lock = SchedulerLock(engine.settings.database, engine.settings.home)
        self.sqlite = engine.settings.database.startswith("sqlite")
        self._next_due: dict[str, datetime | None] = {}
        #: import errors already logged, by file: each is logged once per change
        self._logged_errors: dict[str, str] = {}
        self._next_scan = 0.0
        self._next_renew = 0.0
        self._stop = threading.Event()
        self.loops = 0
        #: called with each loop's working time (its wait for events left out): metrics
        self.on_loop: Callable[[float], None] | None = None
        #: lists the consumed ``s3://`` datasets every ``MLPIPE_DATASET_POLL_S``
        self.poller = DatasetPoller(engine.settings.dataset_poll_s)
        self._datasets_seen: tuple[Any, ...] = ()
        #: DAG ids of the last scan (a DAG gone from the folder loses its dataset references)
        self._seen_dag_ids: set[str] = set()

    # -- life cycle ----------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        """Stop taking new work; running tasks get ``grace_period`` seconds to finish."""
        if not self._stop.is_set():
            log.info("scheduler %s stopping: no new work, waiting for running tasks", self.id)
        self._stop.set()

    def run(self, *, max_loops: int | None = None,
            until: Callable[[Scheduler], bool] | None = None) -> None:
        """Loop until SIGTERM/SIGINT (or ``until`` says so, or ``max_loops``)."""
        self.lock.acquire()
        if self.sqlite:  # we hold the lock: any other scheduler's leases are stale
            self.store.release_dead_schedulers(self.id)
        installed = threading.current_thread() is threading.main_thread()
        previous = {}
        if installed:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        try:
            log.info("scheduler %s started (executor %s, dags %s)", self.id,
                     self.engine.settings.executor, self.watcher.folder)
            while not self._stop.is_set():
                self.loop_once()
                if (max_loops is not None and self.loops >= max_loops) or \
                        (until is not None and until(self)):
                    break
            self._drain_on_stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.poller.shutdown()
            self.store.release_runs(self.id)
            self.executor.shutdown()
            self.lock.release()

    def _drain_on_stop(self) -> None:
        if not self._stop.is_set():
            return
        for driver in self.drivers.values():
            driver.accepting = False
        deadline = time.monotonic() + self.grace_period
        while any(d.busy for d in self.drivers.values()) and time.monotonic() < deadline:
            self._dispatch(self.executor.poll(0.2))
            for driver in self.drivers.values():
                driver.step()  # notices adopted instances that finished elsewhere
        for driver in self.drivers.values():
            for key in list(driver.inflight):
                self.executor.kill(key)
        log.info("scheduler %s stopped", self.id)

    # -- one loop --------------------------------------------------------------------------------

    def loop_once(self) -> None:
        self.loops += 1
        clock = time.monotonic()
        if clock >= self._next_scan:
            self._scan()
            self._next_scan = clock + self.scan_interval
        paused = self.store.paused_dag_ids()
        if not self._stop.is_set():
            self._create_due_runs(paused)
            self._create_dataset_runs(paused)
            self._take_runs(paused)
        if clock >= self._next_renew:
            held = self.store.renew_leases(self.id, self.lease)
            for key in [k for k in self.drivers if k not in held]:
                log.warning("lost the lease of run %s/%s (another scheduler took it over); "
                            "stopping to drive it", *key)
                del self.drivers[key]
            self._next_renew = clock + self.lease.total_seconds() / 3
        for key, driver in list(self.drivers.items()):
            driver.step()
            if driver.done:
                driver.finish()
                del self.drivers[key]
                self.store.release_runs(self.id, [key])
        worked = time.monotonic() - clock
        events = self.executor.poll(self._sleep_time())
        dispatched = time.monotonic()
        self._dispatch(events)
        if self.on_loop is not None:
            self.on_loop(worked + time.monotonic() - dispatched)

    def _scan(self) -> None:
        if self.watcher.refresh():
            bag = self.watcher.bag
            record_dags(self.store, bag.dags.values(),
                        paused_by_default=self.engine.settings.dags_paused_at_creation)
            record_listing(self.store, bag.dags.values(), self.watcher.stamps())
            self.store.replace_import_errors(bag.import_errors)
            for path, error in sorted(bag.import_errors.items()):
                if self._logged_errors.get(path) != error:
                    log.error("import error in DAG file %s: %s", path, error)
            self._logged_errors = dict(bag.import_errors)
            self._next_due = {}
            self.engine._bag = bag  # children of the local executor look DAGs up here
            record_dataset_references(self.store, bag.dags.values(),
                                      removed=self._seen_dag_ids - set(bag.dags))
            self._seen_dag_ids = set(bag.dags)
            self.poller.set_targets(consumed_datasets(bag.dags.values()))

    def _create_due_runs(self, paused: set[str]) -> None:
        now = self.now()
        for dag in self.watcher.bag.dags.values():
            if dag.dag_id in paused or (not dag.timetable.periodic and dag.schedule != "@once"):
                continue
            due_at = self._next_due.get(dag.dag_id, now)
            if due_at is None or due_at > now:
                continue
            latest = self.store.latest_scheduled_run(dag.dag_id)
            after = latest.logical_date if latest else None
            if not dag.catchup and self.store.active_run_count(dag.dag_id) >= \
                    dag.max_active_runs:
                # no pile-up: the latest interval is created once there is room for it
                self._next_due[dag.dag_id] = now + timedelta(seconds=self.scan_interval)
                continue
            for interval in due_intervals(dag.timetable, start_date=dag.start_date,
                                          end_date=dag.end_date, catchup=dag.catchup, now=now,
                                          after=after):
                self._create_run(dag, interval.start, interval)
                after = interval.start
            self._next_due[dag.dag_id] = next_due_at(
                dag.timetable, start_date=dag.start_date, end_date=dag.end_date, after=after)

    def _create_run(self, dag: DAG, logical_date: datetime, interval: Any) -> None:
        if self.store.automated_run_at(dag.dag_id, logical_date) is not None:
            return  # one run per logical date: a backfill already made this one
        try:
            create_dag_run(self.store, dag, logical_date=logical_date, run_type="scheduled",
                           run_id=f"scheduled__{logical_date.isoformat()}",
                           data_interval=interval)
            log.info("created run scheduled__%s of %s", logical_date.isoformat(), dag.dag_id)
        except RunExistsError:
            pass  # another scheduler created it first

    def _create_dataset_runs(self, paused: set[str]) -> None:
        """Start due listings, apply finished ones, then create the runs the dataset events
        call for (the listing itself runs on the poller's threads)."""
        self.poller.start_due()
        self.poller.apply_finished(self.store)
        dags = self.watcher.bag.dags
        if not any(isinstance(d.timetable, DatasetTimetable) for d in dags.values()):
            return
        # One cheap read a loop; the deciding transaction only when something is new.
        seen = (self.store.newest_dataset_event_id(), frozenset(paused), id(self.watcher.bag))
        if seen != self._datasets_seen:
            create_dataset_runs(self.store, dags.values(), paused)
            self._datasets_seen = seen

    def _take_runs(self, paused: set[str]) -> None:
        dags = self.watcher.bag.dags
        wanted = [d for d in dags if d not in paused]
        if not wanted:
            return
        for record in self.store.claim_runs(self.id, self.lease, dag_ids=wanted):
            key = (record.dag_id, record.run_id)
            if key in self.drivers:
                continue
            dag = dags[record.dag_id]
            if record.state == DagRunState.QUEUED and not self.store.start_run_if_room(
                    dag.dag_id, record.run_id, dag.max_active_runs):
                continue
            driver = DagRunDriver(self.store, dag, record.run_id, self.executor,
                                  heartbeat_timeout=self.engine.settings.task_lease_s,
                                  xcom_max_bytes=self.engine.settings.xcom_max_bytes,
                                  on_progress=self.on_progress, check_deadlines=True)
            self.drivers[key] = driver
            driver.start()

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            driver = self.drivers.get((event.key.dag_id, event.key.run_id))
            if driver is not None:
                driver.on_event(event)

    def _sleep_time(self) -> float:
        """Until the next thing is due; never a fixed multi-second tick."""
        clock = time.monotonic()
        waits = [self._next_scan - clock, self._next_renew - clock]
        waits += [d.wait_time() for d in self.drivers.values()]
        now = self.now()
        waits += [(due - now).total_seconds() for due in self._next_due.values()
                  if due is not None]
        polling = self.poller.wait_time()
        if polling is not None:
            waits.append(polling)
        return max(0.0, min(waits))
