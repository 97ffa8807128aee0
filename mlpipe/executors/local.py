"""``LocalExecutor``: a pool of warm worker processes, each try in a fresh fork of one.

``parallelism`` workers are forked from this process when work first needs them (each
inherits mlpipe imported and the DAGs parsed) and kept while they are used. A worker forks one
child per try (``local_worker``): the child runs exactly one try and exits, so nothing a try
does to its process (a crash, globals, environment variables, the working directory, threads,
memory) reaches the next one. Each try leads its own process group: killing a try kills
everything it started, and a try that outlives its timeout is killed that way while its worker
goes on. A worker that dies is replaced; its running try is reported as lost (the driver
retries or fails it at once).

Workers are forked only from the thread that calls ``submit``/``poll`` (the driver's), never
from the reaper thread: forking while another thread is inside SQLite would leave the worker
waiting forever on a lock it inherited held. A worker whose DAG objects are not the ones this
process holds now (a DAG file parsed again) is retired and a fresh one forked.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload
from mlpipe.executors.local_worker import (
    NOT_CLAIMED,
    RETIRED,
    LineReader,
    TryLimits,
    send_command,
    try_command,
    worker_main,
)
from mlpipe.executors.resources import Grant, SlotAllocator, first_fitting, local_slots
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG

log = logging.getLogger("mlpipe.executor")

__all__ = ["NOT_CLAIMED", "RETIRED", "WORKER_IDLE", "LocalExecutor"]

#: seconds an idle worker is kept before it is retired
WORKER_IDLE = 30.0
#: seconds past a try's own timeout before its process group is killed from outside
HARD_KILL_GRACE = 30.0
#: how tries share a worker: ``fork`` (a fresh child per try) or ``reuse`` (run by the worker
#: itself, restored after each try, the worker retired when a try leaked)
ISOLATIONS = ("fork", "reuse")
#: put in the event queue by the reaper: a worker ended and tries wait for a new one
_WAKE = TaskEvent(TIKey("", "", ""), attempt=-1)


@dataclass(eq=False)
class _Worker:
    """One pool worker, as this process sees it."""

    pid: int
    #: a pidfd: readable once the worker itself has ended (not its children, which inherit
    #: every pipe it holds)
    sentinel: int
    commands: int  # write end of its command pipe
    events: LineReader  # read end of its event pipe (non-blocking)
    #: the DAG objects it resolves ids to: this process's at the fork, or handed since
    dags: dict[str, DAG] = field(default_factory=dict)
    #: the try given to it, until that try's process has ended
    workload: Workload | None = None
    #: its current child (standby or try): the process group to kill
    child: int | None = None
    #: the resource slots (GPUs...) its try holds until the try is reported
    grant: Grant | None = None
    #: the try's end was reported (by the child, or by its exit)
    reported: bool = False
    kill_requested: bool = False
    #: an idle worker's retirement time; a busy one's hard deadline
    deadline: float = float("inf")
    stopping: bool = False
    ended: bool = False


class LocalExecutor(Executor):
    """At most ``parallelism`` tries at once (default: core count), in a pool of as many workers.

    One reaper thread waits for every worker at once (on their event pipes and process
    sentinels); it dispatches to idle workers but never forks.
    """

    def __init__(self, parallelism: int = 0, isolation: str = "reuse",
                 limits: TryLimits | None = None) -> None:
        super().__init__(parallelism or os.cpu_count() or 1)
        if isolation not in ISOLATIONS:
            raise ValueError(f"unknown isolation {isolation!r}; valid: {list(ISOLATIONS)}")
        #: ``fork`` or ``reuse`` (see ``ISOLATIONS``); read when a worker is forked
        self.isolation = isolation
        self.limits = limits or TryLimits()
        #: tries not given to a worker yet, with the DAG object they were submitted against
        self._pending: deque[tuple[Workload, DAG | None]] = deque()
        self._workers: dict[int, _Worker] = {}  # by process sentinel, until the process ends
        self._events: queue.Queue[TaskEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._wake_r, self._wake_w = -1, -1
        self._reaper: threading.Thread | None = None
        self._stopping = False
        #: seconds an idle worker is kept before it is retired
        self.worker_idle = WORKER_IDLE
        #: seconds past a try's timeout before its process group is killed from outside
        self.kill_grace = HARD_KILL_GRACE
        #: GPUs (``MLPIPE_GPUS``) and other resources tries hold (``resources=``)
        self.slots = SlotAllocator()

    @classmethod
    def from_settings(cls, settings: Any, parallelism: int = 0) -> LocalExecutor:
        """The pool ``settings`` describe: its isolation and the GPUs of ``MLPIPE_GPUS``."""
        executor = cls(parallelism, isolation=settings.local_isolation)
        executor.slots = local_slots(settings.gpus)
        return executor

    def start(self, env: ExecutionEnv) -> None:
        super().start(env)
        # Import once here what every try needs, instead of once per worker or child.
        import jinja2.sandbox  # noqa: F401
        import psutil  # noqa: F401

        import mlpipe.runtime.task_runner  # noqa: F401 - the try's body and its imports

        env.store.prime()
        if self._reaper is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            self._reaper = threading.Thread(target=self._reap, name="mlpipe-reaper",
                                            daemon=True)
            self._reaper.start()

    def try_environment(self, workload: Workload) -> dict[str, str]:
        """Environment variables set in the try's own process before it runs (none here).

        The hook for per-try settings such as ``CUDA_VISIBLE_DEVICES`` from
        ``workload.resources``; called under the executor's lock when the try is given to a
        worker (on the driver's thread, or the reaper's when a worker just became free).
        """
        return {}

    def submit(self, workload: Workload) -> None:
        assert self.env is not None, "start() the executor first"
        try:  # resolved here, on the driver's thread: the reaper dispatches too
            dag: DAG | None = self.env.dag_provider(workload.key.dag_id)
        except Exception:  # the try's own process reports the failure to resolve it
            dag = None
        refusal = self.slots.refusal(workload.resources)
        if refusal is not None:  # it would wait forever: fail it now, saying why
            self.env.store.transition(workload.key, ["queued"], "failed",
                                      error=f"local executor: {refusal} (MLPIPE_GPUS)",
                                      end_date=datetime.now(UTC))
            log.error("%s: %s", workload.key, refusal)
        with self._lock:
            self._outstanding += 1
            if refusal is not None:
                self._events.put(TaskEvent(workload.key, None, workload.attempt))
                return
            self._pending.append((workload, dag))
            self._dispatch_ready(can_fork=True)

    # -- workers (under the lock) ------------------------------------------------------------

    def _dispatch_ready(self, *, can_fork: bool) -> None:
        """Give pending tries to idle workers; fork workers (driver's thread) up to the limit."""
        changed = False
        while self._pending:
            fitting = first_fitting((w for w, _ in self._pending), self.slots)
            if fitting is None:
                break  # every pending try waits for resources running tries hold
            index, grant = fitting
            workload, dag = self._pending[index]
            worker = self._idle_worker(workload.key.dag_id, dag)
            if worker is None:
                if not can_fork or self._live_workers() >= self.parallelism:
                    self.slots.release(grant)
                    break
                worker = self._fork()
                changed = True
            del self._pending[index]
            worker.grant = grant
            self._give(worker, workload)
        if changed:
            os.write(self._wake_w, b"x")  # the reaper waits on the new pipes and sentinels

    def _live_workers(self) -> int:
        return sum(1 for w in self._workers.values() if not w.stopping)

    def _idle_worker(self, dag_id: str, dag: DAG | None) -> _Worker | None:
        """An idle worker that resolves ``dag_id`` to ``dag`` (else None).

        Idle workers holding an older parse of the DAG are retired on the way.
        """
        for worker in self._workers.values():
            if worker.workload is not None or worker.stopping or worker.ended:
                continue
            known = worker.dags.get(dag_id)
            if dag is not None and known is not None and known is not dag:
                self._retire(worker)  # forked before this DAG was parsed again
                continue
            if dag is not None and known is None:
                worker.dags[dag_id] = dag  # it parses the same file itself, once
            return worker
        return None

    def _fork(self) -> _Worker:
        env = self.env
        assert env is not None
        dags: dict[str, DAG] = {}
        for dag_id in {dag_id for dag_id, _ in env.runs}:
            with contextlib.suppress(Exception):
                dags[dag_id] = env.dag_provider(dag_id)
        commands_r, commands_w = os.pipe()
        events_r, events_w = os.pipe()
        foreign = [fd for w in self._workers.values()
                   for fd in (w.commands, w.events.fd, w.sentinel)]
        foreign += [self._wake_r, self._wake_w, commands_w, events_r]
        parent = os.getpid()
        # The worker's garbage collector must not walk the objects it inherits: touching
        # them would copy their pages (copy-on-write) in the worker and every child.
        gc.freeze()
        try:
            pid = os.fork()
            if pid == 0:  # the worker: it never returns here
                try:
                    worker_main(env, commands_r, events_w, parent, foreign,
                                self.isolation, self.limits)
                finally:
                    os._exit(1)
        finally:
            gc.unfreeze()  # the parent keeps collecting as before
        os.close(commands_r)
        os.close(events_w)
        os.set_blocking(events_r, False)
        worker = _Worker(pid, os.pidfd_open(pid), commands_w, LineReader(events_r), dags)
        self._workers[worker.sentinel] = worker
        return worker

    def _give(self, worker: _Worker, workload: Workload) -> None:
        worker.workload = workload
        worker.reported = False
        worker.kill_requested = False
        worker.deadline = (time.monotonic() + workload.timeout + self.kill_grace
                           if workload.timeout else float("inf"))
        try:
            send_command(worker.commands, try_command(
                workload.key, workload.attempt,
                {**self.try_environment(workload),
                 **(worker.grant.env() if worker.grant is not None else {})},
                workload.resources))
        except OSError:  # it died: its sentinel reports the try as lost
            log.warning("worker process %s ended before it got %s", worker.pid,
                        workload.key)

    def _retire(self, worker: _Worker) -> None:
        worker.stopping = True
        with contextlib.suppress(OSError):
            send_command(worker.commands, {"stop": True})

    # -- the reaper thread -----------------------------------------------------------------

    def _reap(self) -> None:
        """Report each try as it ends; kill one that outlived its timeout; retire idlers."""
        while not self._stopping:
            with self._lock:
                workers = list(self._workers.items())
            deadline = min((w.deadline for _, w in workers), default=float("inf"))
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait(
                [self._wake_r, *(w.events.fd for _, w in workers), *(s for s, _ in workers)],
                timeout)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
            for sentinel, worker in workers:
                try:
                    if worker.events.fd in ready:
                        self._on_messages(worker)
                    if sentinel in ready:
                        self._on_exit(sentinel, worker)
                except Exception:  # one odd worker must not stop the reports of the others
                    log.exception("could not reap worker process %s", worker.pid)
            now = time.monotonic()
            for _, worker in workers:
                if now >= worker.deadline:
                    self._past_deadline(worker)

    def _on_messages(self, worker: _Worker) -> None:
        messages = worker.events.available() or []
        for message in messages:
            if "child" in message and "exit" not in message:
                with self._lock:
                    worker.child = message["child"]
                    kill = worker.kill_requested and not worker.reported
                if kill:
                    self._kill_group(message["child"])
            elif "code" in message:
                self._report(worker, message.get("attempt"), message["code"],
                             message.get("state"), tuple(message.get("skip") or ()))
            elif "exit" in message:
                self._on_child_exit(worker, message["child"], message["exit"])
            elif "idle" in message:  # a reuse worker finished its try and stays
                self._on_child_exit(worker, worker.child or 0, 0)
            elif "retire" in message:  # a reuse worker ends after this try: not counted
                with self._lock:
                    worker.stopping = True

    def _on_child_exit(self, worker: _Worker, child: int, code: int) -> None:
        """A worker's child ended: report its try if it did not, then the worker is idle."""
        with self._lock:
            if worker.child == child and child != worker.pid:
                worker.child = None
            workload = worker.workload
        if workload is None:
            return  # a standby (retired, or killed while waiting)
        if not worker.reported:
            if code == RETIRED:  # the standby never read the try: it ran nowhere
                log.warning("worker process %s retired with %s given", worker.pid,
                            workload.key)
            self._report(worker, workload.attempt, code)
        with self._lock:
            worker.workload = None
            worker.deadline = time.monotonic() + self.worker_idle
            if self._stopping_pool:
                self._retire(worker)
            else:
                self._dispatch_ready(can_fork=False)

    def _on_exit(self, sentinel: int, worker: _Worker) -> None:
        """A worker process ended: its running try (if any) is lost; it is not reused."""
        try:
            exitcode: int | None = os.waitstatus_to_exitcode(os.waitpid(worker.pid, 0)[1])
        except ChildProcessError:  # reaped by someone else: its code is unknown
            exitcode = None
        with contextlib.suppress(Exception):
            self._on_messages(worker)  # what it said before it ended
        with self._lock:
            del self._workers[sentinel]
            worker.ended = True
            child, workload = worker.child, worker.workload
        if workload is not None and not worker.reported:
            if child is not None:  # its try runs on, orphaned: it must not record anything
                self._kill_group(child)
            log.error("worker process %s ended (exit code %s) while running %s",
                      worker.pid, exitcode, workload.key)
            self._report(worker, workload.attempt, exitcode)
        with contextlib.suppress(OSError):
            os.close(worker.commands)
        for fd in (worker.events.fd, worker.sentinel):
            with contextlib.suppress(OSError):
                os.close(fd)
        if not self._stopping_pool:
            os.write(self._wake_w, b"x")
            with self._lock:
                waiting = bool(self._pending)
            if waiting:  # the driver's thread forks a replacement (the reaper never forks)
                self._events.put(_WAKE)

    def _past_deadline(self, worker: _Worker) -> None:
        with self._lock:
            if worker.ended:
                return
            worker.deadline = float("inf")
            if worker.workload is None:  # idle for worker_idle seconds
                if not worker.stopping:
                    self._retire(worker)
                return
            child, key = worker.child, worker.workload.key
        log.error("%s outlived its timeout; killing process group %s", key, child)
        if child is not None:
            self._kill_group(child)
        else:  # its child is not known yet: the worker goes, and its sentinel reports it
            self._kill_worker(worker)

    def _report(self, worker: _Worker, attempt: int | None, code: int | None,
                state: str | None = None, skip: tuple[str, ...] = ()) -> None:
        with self._lock:
            workload = worker.workload
            if workload is None or worker.reported or attempt != workload.attempt:
                return
            worker.reported = True
            if worker.grant is not None:
                self.slots.release(worker.grant)
                worker.grant = None
        self._events.put(TaskEvent(workload.key, code, workload.attempt,
                                   claimed=code != NOT_CLAIMED, state=state, skip=skip))

    @staticmethod
    def _kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    @staticmethod
    def _kill_worker(worker: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)

    # -- the executor interface -------------------------------------------------------------

    _stopping_pool = False

    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        events: list[TaskEvent] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not events:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                event = self._events.get(timeout=left) if left != 0 else \
                    self._events.get_nowait()
                if event is _WAKE:  # a worker ended: replace it before waiting on
                    with self._lock:
                        self._dispatch_ready(can_fork=True)
                    continue
                events.append(event)
            while True:
                event = self._events.get_nowait()
                if event is not _WAKE:
                    events.append(event)
        except queue.Empty:
            pass
        with self._lock:
            self._outstanding -= len(events)
            self._dispatch_ready(can_fork=True)
        return events

    def kill(self, key: TIKey) -> bool:
        with self._lock:
            found = [w for w in self._workers.values()
                     if w.workload is not None and w.workload.key == key and not w.reported]
            for worker in found:
                worker.kill_requested = True  # a child not known yet is killed when it is
            children = [w.child for w in found if w.child is not None]
        for child in children:
            self._kill_group(child)
        return bool(found)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._outstanding

    @property
    def worker_pids(self) -> list[int]:
        """The pool's worker processes (not their children), for inspection and tests."""
        with self._lock:
            return [w.pid for w in self._workers.values() if not w.ended]

    def shutdown(self) -> None:
        """Drop what has not started, retire idle workers, wait (up to 60 s) for what runs."""
        with self._lock:
            self._pending.clear()
            self._stopping_pool = True
            for worker in self._workers.values():
                if worker.workload is None and not worker.stopping:
                    self._retire(worker)
        deadline = time.monotonic() + 60
        while self._workers and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:  # tries still running after the grace: none may outlive us
            stragglers = list(self._workers.values())
        for worker in stragglers:
            if worker.child is not None:
                self._kill_group(worker.child)
            self._kill_worker(worker)
        deadline = time.monotonic() + 5
        while self._workers and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._reaper is not None:
            self._stopping = True
            os.write(self._wake_w, b"x")
            self._reaper.join(timeout=5)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._reaper = None
        self._stopping_pool = False
