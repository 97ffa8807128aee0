"""``LocalExecutor``: each task instance in its own child process, ``parallelism`` at a time.

Children are forked from this process, which has mlpipe imported and the DAGs parsed, so a
task starts in milliseconds instead of paying a fresh interpreter and a DAG-file import.
Each child leads its own process group: killing a task kills everything it started.
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


def _child_main(env: ExecutionEnv, key: TIKey) -> None:
    os.setsid()  # own process group: kill() reaches every process the task starts
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # Never touch the parent's pooled connections from the child.
    env.store.engine.dispose(close=False)
    from mlpipe.runtime.task_runner import run_task_instance
    from mlpipe.store.metadata_store import MetadataStore

    store = MetadataStore.open(env.store_url, migrate=False)
    try:
        outcome = run_task_instance(
            store, env.dag_provider(key.dag_id), key, logs_root=env.logs_root,
            xcom_max_bytes=env.xcom_max_bytes, heartbeat_interval=env.heartbeat_interval,
            on_heartbeat_lost=lambda: os.kill(os.getpid(), signal.SIGTERM),
        )
    finally:
        store.dispose()
    os._exit(0 if outcome is not None else 3)


class LocalExecutor(Executor):
    """Forked child processes, at most ``parallelism`` at once (default: the core count)."""

    def __init__(self, parallelism: int = 0) -> None:
        super().__init__(parallelism or os.cpu_count() or 1)
        self._pending: deque[Workload] = deque()
        self._running: dict[TIKey, Any] = {}
        self._events: queue.Queue[TaskEvent] = queue.Queue()
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("fork")
        self._outstanding = 0

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
            self._running[workload.key] = process
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
            self._running.pop(workload.key, None)
            self._launch_ready()
        self._events.put(TaskEvent(workload.key, process.exitcode))

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
        return events

    def kill(self, key: TIKey) -> bool:
        with self._lock:
            process = self._running.get(key)
        if process is None or process.pid is None:
            return False
        self._kill_group(process.pid)
        return True

    def pid_of(self, key: TIKey) -> int | None:
        with self._lock:
            process = self._running.get(key)
        return process.pid if process is not None else None

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
