"""``LocalExecutor``: each task instance in its own child process, ``parallelism`` at a time.

Children are forked from this process, which has mlpipe imported and the DAGs parsed, so a
task starts in milliseconds instead of paying a fresh interpreter and a DAG-file import.
Each child leads its own process group: killing a task kills everything it started.
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
from typing import Any

from mlpipe.executors.base import ExecutionEnv, Executor, TaskEvent, Workload
from mlpipe.store.entities import TIKey

log = logging.getLogger("mlpipe.executor")

#: exit code of a child that found its task instance no longer queued
NOT_CLAIMED = 3


def _child_main(env: ExecutionEnv, key: TIKey) -> None:
    os.setsid()  # own process group: kill() reaches every process the task starts
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Never touch the parent's pooled connections: drop them (unclosed) and open new ones;
    # the engine's compiled-statement cache comes along.
    store = env.store
    store.engine.dispose(close=False)
    from mlpipe.runtime.task_runner import run_task_instance

    try:
        outcome = run_task_instance(
            store, env.dag_provider(key.dag_id), key, logs_root=env.logs_root,
            xcom_max_bytes=env.xcom_max_bytes, heartbeat_interval=env.heartbeat_interval,
            tracking=env.tracking, artifact_root=env.artifact_root,
            on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM),
            run=env.runs.get((key.dag_id, key.run_id)),  # the driver's, inherited by fork
        )
    finally:
        store.dispose()
    os._exit(0 if outcome is not None else NOT_CLAIMED)


class LocalExecutor(Executor):
    """Forked child processes, at most ``parallelism`` at once (default: the core count).

    One reaper thread waits for every child at once (on the process sentinels), instead of a
    thread started per child; it never forks.
    """

    def __init__(self, parallelism: int = 0) -> None:
        super().__init__(parallelism or os.cpu_count() or 1)
        self._pending: deque[Workload] = deque()
        #: child's sentinel -> (workload, process, deadline for a child outliving its timeout)
        self._running: dict[int, tuple[Workload, Any, float]] = {}
        self._events: queue.Queue[TaskEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("fork")
        self._outstanding = 0
        self._wake_r, self._wake_w = -1, -1
        self._reaper: threading.Thread | None = None
        self._stopping = False

    def start(self, env: ExecutionEnv) -> None:
        super().start(env)
        # Import once here what every task needs, instead of once per forked child.
        import jinja2.sandbox  # noqa: F401
        import psutil  # noqa: F401

        import mlpipe.runtime.task_runner  # noqa: F401

        if self._reaper is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            self._reaper = threading.Thread(target=self._reap, name="mlpipe-reaper",
                                            daemon=True)
            self._reaper.start()

    def submit(self, workload: Workload) -> None:
        assert self.env is not None, "start() the executor first"
        with self._lock:
            self._outstanding += 1
            self._pending.append(workload)
            self._launch_ready()

    def _launch_ready(self) -> None:
        launched = False
        while self._pending and len(self._running) < self.parallelism:
            workload = self._pending.popleft()
            process = self._context.Process(target=_child_main, args=(self.env, workload.key),
                                            name=f"mlpipe-task-{workload.key.task_id}")
            # The child's garbage collector must not walk the objects it inherits: touching
            # them would copy their pages (copy-on-write) in every forked task.
            gc.freeze()
            try:
                process.start()
            finally:
                gc.unfreeze()  # the parent keeps collecting as before
            deadline = (time.monotonic() + workload.timeout + 30 if workload.timeout
                        else float("inf"))
            self._running[process.sentinel] = (workload, process, deadline)
            launched = True
        if launched:
            os.write(self._wake_w, b"x")  # the reaper waits on the new sentinel too

    def _reap(self) -> None:
        """Report each child that exits; stop the tree of one that outlived its timeout."""
        while not self._stopping:
            with self._lock:
                running = list(self._running.values())
                sentinels = list(self._running)
            deadline = min((d for _, _, d in running), default=float("inf"))
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait([self._wake_r, *sentinels], timeout)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
            for sentinel in ready:
                if isinstance(sentinel, int) and sentinel != self._wake_r:
                    self._finished(sentinel)
            now = time.monotonic()
            for workload, process, limit in running:
                if now >= limit and process.is_alive():
                    log.error("%s outlived its timeout; killing process group %s",
                              workload.key, process.pid)
                    self._kill_group(process.pid)

    def _finished(self, sentinel: int) -> None:
        workload, process, _ = self._running[sentinel]
        process.join()
        with self._lock:
            del self._running[sentinel]
        self._events.put(TaskEvent(workload.key, process.exitcode, workload.attempt,
                                   claimed=process.exitcode != NOT_CLAIMED))
        process.close()

    @staticmethod
    def _kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

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
            pids = [p.pid for w, p, _ in self._running.values() if w.key == key]
        for pid in pids:
            if pid is not None:
                self._kill_group(pid)
        return bool(pids)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._outstanding

    def shutdown(self) -> None:
        """Drop what has not started, wait (up to 60 s) for what runs, stop the reaper."""
        with self._lock:
            self._pending.clear()
        deadline = time.monotonic() + 60
        while self._running and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._reaper is not None:
            self._stopping = True
            os.write(self._wake_w, b"x")
            self._reaper.join(timeout=5)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._reaper = None
