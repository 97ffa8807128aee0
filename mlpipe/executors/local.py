"""``LocalExecutor``: each task instance in its own child process, ``parallelism`` at a time.

Children are forked from this process, which has mlpipe imported and the DAGs parsed, so a
task starts in milliseconds instead of paying a fresh interpreter and a DAG-file import.
Each child runs exactly one try and exits: nothing carries from one task to the next.
Each child leads its own process group: killing a task kills everything it started.

A child is forked ahead of need, a *standby*: it leaves the inherited database connections
alone, opens its own and reads the schema, then waits on a pipe for the task instance to run
(the executor retires one that waited ``standby_idle`` seconds). It reports the try's end on
the pipe before it exits, so what follows does not wait for the process to be torn down. A
standby only takes a task instance whose DAG (and run) it resolves to the very objects this
process does now; after a DAG file was parsed again, a fresh child is forked instead.

Children are only forked from the thread that calls ``submit``/``poll`` (the driver's), never
from a waiter thread: forking while another thread is inside SQLite would leave the child
waiting forever on a lock it inherited held.
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
from mlpipe.executors.process_watch import set_parent_death_signal
from mlpipe.executors.resources import Grant, SlotAllocator, local_slots, take_fitting
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from mlpipe.core.dag import DAG
    from mlpipe.runtime.models import DagRun

log = logging.getLogger("mlpipe.executor")

#: exit code of a child that found its task instance no longer queued
NOT_CLAIMED = 3
#: exit code of a standby that was never given a task instance
RETIRED = 4
#: seconds a standby waits for a task instance before it is retired
STANDBY_IDLE = 10.0
#: standbys kept at most: enough for chains' hand-offs; a wide fan-out is bound by the cores,
#: and each standby forked is the driver's time (~5 ms for a 70 MB driver here)
MAX_STANDBYS = 2


def _child_main(env: ExecutionEnv, conn: multiprocessing.connection.Connection,
                parent: int) -> None:
    os.setsid()  # own process group: kill() reaches every process the task starts
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Never touch the parent's pooled connections: drop them (unclosed) and open new ones;
    # the engine's compiled-statement cache comes along.
    store = env.store
    store.engine.dispose(close=False)
    store.warm_up()  # connect and read the schema before there is a task to wait for it
    # A standby dies with its parent: siblings forked later hold copies of this pipe's other
    # end, so its EOF alone is no sign. A try, once given, outlives a killed scheduler (the
    # next one adopts it through its heartbeat), so the signal is cleared then.
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(RETIRED)
    try:
        message = conn.recv()  # None: retired by the executor; EOF: the executor is gone
    except EOFError:
        message = None
    if message is None:
        os._exit(RETIRED)
    set_parent_death_signal(0)
    key, use_run, env_vars = message
    os.environ.update(env_vars)  # CUDA_VISIBLE_DEVICES: the GPUs the try holds
    try:
        outcome = env.runner.run(
            key, on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM),
            # the driver's run, inherited by the fork, when it is the one the driver has now
            run=env.runs.get((key.dag_id, key.run_id)) if use_run else None,
        )
    finally:
        store.dispose()
    code = 0 if outcome is not None else NOT_CLAIMED
    with contextlib.suppress(OSError):
        conn.send(code)  # the try is recorded: the driver may go on before this process ends
    os._exit(code)


@dataclass(eq=False)
class _Child:
    """One forked child: a standby until it is given a workload."""

    process: Any
    conn: multiprocessing.connection.Connection
    #: what the child resolves DAG ids and runs to: this process's objects at the fork
    dags: dict[str, DAG] = field(default_factory=dict)
    runs: dict[tuple[str, str], DagRun] = field(default_factory=dict)
    workload: Workload | None = None
    #: the resource slots (GPUs...) the workload holds until it is reported
    grant: Grant | None = None
    #: a standby's: when it is retired; a worker's: when it outlived its timeout (killed)
    deadline: float = float("inf")
    #: the child reported its try's end (or its process ended): its slot is free
    reported: bool = False
    #: the process ended (set by the reaper under the lock): never give it work
    ended: bool = False


class LocalExecutor(Executor):
    """Forked child processes, at most ``parallelism`` tries at once (default: core count).

    One reaper thread waits for every child at once (on their pipes and process sentinels),
    instead of a thread started per child; it never forks. Up to ``MAX_STANDBYS`` standbys
    (no more than ``parallelism``) are kept while work is outstanding.
    """

    def __init__(self, parallelism: int = 0) -> None:
        super().__init__(parallelism or os.cpu_count() or 1)
        self._pending: deque[Workload] = deque()
        self._children: dict[int, _Child] = {}  # by process sentinel, until the process ends
        self._standby: deque[_Child] = deque()
        self._events: queue.Queue[TaskEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("fork")
        self._outstanding = 0
        self._wake_r, self._wake_w = -1, -1
        self._reaper: threading.Thread | None = None
        self._stopping = False
        #: seconds a standby waits for work before it is retired
        self.standby_idle = STANDBY_IDLE
        #: GPUs (``MLPIPE_GPUS``) and other resources tries hold (``resources=``)
        self.slots = SlotAllocator()

    @classmethod
    def from_settings(cls, settings: Any, parallelism: int = 0) -> LocalExecutor:
        executor = cls(parallelism)
        executor.slots = local_slots(settings.gpus)
        return executor

    def start(self, env: ExecutionEnv) -> None:
        super().start(env)
        # Import once here what every task needs, instead of once per forked child.
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

    def submit(self, workload: Workload) -> None:
        assert self.env is not None, "start() the executor first"
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
            self._pending.append(workload)
            self._launch_ready()

    # -- children (the driver's thread, under the lock) ----------------------------------------

    def _busy_slots(self) -> int:
        return sum(1 for c in self._children.values()
                   if c.workload is not None and not c.reported)

    def _launch_ready(self) -> None:
        changed = False
        while self._pending and self._busy_slots() < self.parallelism:
            fitting = take_fitting(self._pending, self.slots)
            if fitting is None:
                break  # every pending try waits for resources others hold
            workload, grant = fitting
            child = self._take_standby(workload)
            use_run = child is None or self._same_run(child, workload.key)
            self._dispatch(child or self._fork(), workload, use_run, grant)
            changed = True
        if self._outstanding > 0:
            while len(self._standby) < min(self.parallelism, MAX_STANDBYS):
                self._standby.append(self._fork())
                changed = True
        if changed:
            os.write(self._wake_w, b"x")  # the reaper waits on the new pipes and sentinels

    def _fork(self) -> _Child:
        env = self.env
        assert env is not None
        dags: dict[str, DAG] = {}
        for dag_id in {dag_id for dag_id, _ in env.runs}:
            with contextlib.suppress(Exception):
                dags[dag_id] = env.dag_provider(dag_id)
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_child_main, args=(env, theirs, os.getpid()),
                                        name="mlpipe-task")
        # The child's garbage collector must not walk the objects it inherits: touching
        # them would copy their pages (copy-on-write) in every forked task.
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()  # the parent keeps collecting as before
        theirs.close()
        child = _Child(process, ours, dags, dict(env.runs),
                       deadline=time.monotonic() + self.standby_idle)
        self._children[process.sentinel] = child
        return child

    def _take_standby(self, workload: Workload) -> _Child | None:
        """A standby that resolves the workload's DAG as this process does now (else None)."""
        env = self.env
        assert env is not None
        try:
            dag = env.dag_provider(workload.key.dag_id)
        except Exception:
            dag = None
        while self._standby:
            child = self._standby.popleft()
            if child.ended:
                continue
            if dag is not None and child.dags.get(workload.key.dag_id) is dag:
                return child
            self._retire(child)  # forked before this DAG was (re)parsed: of no more use
        return None

    def _same_run(self, child: _Child, key: TIKey) -> bool:
        assert self.env is not None
        run = self.env.runs.get((key.dag_id, key.run_id))
        return run is not None and child.runs.get((key.dag_id, key.run_id)) is run

    def _dispatch(self, child: _Child, workload: Workload, use_run: bool,
                  grant: Grant) -> None:
        child.workload, child.grant = workload, grant
        child.deadline = (time.monotonic() + workload.timeout + 30 if workload.timeout
                          else float("inf"))
        try:
            child.conn.send((workload.key, use_run, grant.env()))
        except OSError:  # it died waiting: its sentinel reports the workload as lost
            log.warning("standby process %s ended before it got %s", child.process.pid,
                        workload.key)

    @staticmethod
    def _retire(child: _Child) -> None:
        with contextlib.suppress(OSError):
            child.conn.send(None)

    # -- the reaper thread ----------------------------------------------------------------------

    def _reap(self) -> None:
        """Report each try as it ends; stop the tree of one that outlived its timeout."""
        while not self._stopping:
            with self._lock:
                children = list(self._children.items())
            waiting = [c.conn for _, c in children if c.workload is not None and not c.reported]
            deadline = min((c.deadline for _, c in children if not c.reported),
                           default=float("inf"))
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait(
                [self._wake_r, *waiting, *(s for s, _ in children)], timeout)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
            for sentinel, child in children:
                try:
                    if child.conn in ready:
                        self._on_report(child)
                    if sentinel in ready:
                        self._on_exit(sentinel, child)
                except Exception:  # one odd child must not stop the reports of the others
                    log.exception("could not reap child process %s", child.process.pid)
            now = time.monotonic()
            for _, child in children:
                if now >= child.deadline and not child.reported:
                    self._past_deadline(child)

    def _past_deadline(self, child: _Child) -> None:
        with self._lock:
            if child.ended:
                return
            child.deadline = float("inf")
            if child.workload is None:  # an idle standby: retire it, unless just taken
                if child in self._standby:
                    self._standby.remove(child)
                    self._retire(child)
                return
            pid = child.process.pid
        log.error("%s outlived its timeout; killing process group %s", child.workload.key, pid)
        self._kill_group(pid)

    def _on_report(self, child: _Child) -> None:
        try:
            code = child.conn.recv()
        except (EOFError, OSError):  # it died before reporting: its exit code will tell
            return
        self._report(child, code)

    def _on_exit(self, sentinel: int, child: _Child) -> None:
        process = child.process
        process.join()
        # multiprocessing's own clean-up (in Process.start, on the driver's thread) may have
        # reaped the child first: it records the exit code right after; wait for that.
        deadline = time.monotonic() + 1.0
        while process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.001)
        with self._lock:
            del self._children[sentinel]
            child.ended = True
        if child.workload is not None and not child.reported:
            self._report(child, process.exitcode)
        child.conn.close()
        with contextlib.suppress(ValueError):  # still unknown after a second: leave it be
            process.close()

    def _report(self, child: _Child, code: int | None) -> None:
        workload = child.workload
        assert workload is not None
        with self._lock:
            if child.reported:
                return
            child.reported = True
            if child.grant is not None:
                self.slots.release(child.grant)
        self._events.put(TaskEvent(workload.key, code, workload.attempt,
                                   claimed=code != NOT_CLAIMED))

    @staticmethod
    def _kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    # -- the executor interface -----------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> list[TaskEvent]:
        events: list[TaskEvent] = []
        try:
            events.append(self._events.get(timeout=timeout) if timeout != 0
                          else self._events.get_nowait())
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            self._outstanding -= len(events)
            self._launch_ready()
        return events

    def kill(self, key: TIKey) -> bool:
        with self._lock:  # pids read here: the reaper closes a process only after popping it
            pids = [c.process.pid for c in self._children.values()
                    if c.workload is not None and c.workload.key == key and not c.reported]
        for pid in pids:
            if pid is not None:
                self._kill_group(pid)
        return bool(pids)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._outstanding

    def shutdown(self) -> None:
        """Drop what has not started, retire the standbys, wait (up to 60 s) for what runs."""
        with self._lock:
            self._pending.clear()
            while self._standby:
                self._retire(self._standby.popleft())
        deadline = time.monotonic() + 60
        while self._children and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:  # tries still running after the grace: none may outlive us
            stragglers = [c.process.pid for c in self._children.values()]
        for pid in stragglers:
            self._kill_group(pid)
        if self._reaper is not None:
            self._stopping = True
            os.write(self._wake_w, b"x")
            self._reaper.join(timeout=5)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._reaper = None
