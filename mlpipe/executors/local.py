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
import logging
import multiprocessing
import os
import queue
import signal
import threading
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
        )
    finally:
        store.dispose()
    os._exit(0 if outcome is not None else NOT_CLAIMED)


class LocalExecutor(Executor):
    """Forked child processes, at most ``parallelism`` at once (default: the core count)."""

    def __init__(self, parallelism: int = 0) -> None:
        super().__init__(parallelism or os.cpu_count() or 1)
        self._pending: deque[Workload] = deque()
        self._running: dict[tuple[TIKey, int], Any] = {}
        self._events: queue.Queue[TaskEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("fork")
        self._outstanding = 0

    def start(self, env: ExecutionEnv) -> None:
        super().start(env)
        # Import once here what every task needs, instead of once per forked child.
        import jinja2.sandbox  # noqa: F401
        import psutil  # noqa: F401

        import mlpipe.runtime.task_runner  # noqa: F401

    def submit(self, workload: Workload) -> None:
        assert self.env is not None, "start() the executor first"
        with self._lock:
            self._outstanding += 1
            self._pending.append(workload)
            self._launch_ready()

    def _launch_ready(self) -> None:
        while self._pending and len(self._running) < self.parallelism:
            workload = self._pending.popleft()
            process = self._context.Process(target=_child_main, args=(self.env, workload.key),
                                            name=f"mlpipe-task-{workload.key.task_id}")
            process.start()
            self._running[(workload.key, workload.attempt)] = process
            threading.Thread(target=self._wait, args=(workload, process), daemon=True,
                             name=f"mlpipe-wait-{process.pid}").start()

    def _wait(self, workload: Workload, process: Any) -> None:
        process.join(workload.timeout + 30 if workload.timeout else None)
        if process.is_alive():  # the task ignored its own timeout: stop the whole tree
            log.error("%s outlived its timeout; killing process group %s", workload.key,
                      process.pid)
            self._kill_group(process.pid)
            process.join()
        with self._lock:
            self._running.pop((workload.key, workload.attempt), None)
        self._events.put(TaskEvent(workload.key, process.exitcode, workload.attempt,
                                   claimed=process.exitcode != NOT_CLAIMED))

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
        with self._lock:
            processes = [p for (k, _), p in self._running.items() if k == key]
        for process in processes:
            if process.pid is not None:
                self._kill_group(process.pid)
        return bool(processes)

    @property
    def busy(self) -> int:
        with self._lock:
            return self._outstanding

    def shutdown(self) -> None:
        with self._lock:
            self._pending.clear()
            running = list(self._running.values())
        for process in running:
            process.join(timeout=60)
