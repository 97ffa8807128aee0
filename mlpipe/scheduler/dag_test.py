"""``dag.test()``: the production engine, in this process, on a store in memory.

The driver, the executor and the try runner are the ones every run uses; only the store
differs: ``store.memory.MemoryStore`` gives the same records and answers as the SQL store
without importing SQLAlchemy or creating a schema, which was most of a fresh process's
``dag.test()`` (see docs/engine-performance.md). The per-try log files go to a temporary
folder that lives as long as the returned run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import DagDefinitionError
from mlpipe.executors.base import ExecutionEnv, Workload
from mlpipe.executors.sequential import SequentialExecutor
from mlpipe.runtime.models import DagRun, TaskInstance
from mlpipe.runtime.try_runner import TryRunner
from mlpipe.scheduler.dagrun_driver import DagRunDriver
from mlpipe.scheduler.runs import create_dag_run
from mlpipe.settings import Settings, load_settings
from mlpipe.store.entities import TIKey
from mlpipe.store.memory import MemoryStore


def _scratch_dir() -> str | None:
    """A memory-backed folder for throw-away stores when there is one (Linux /dev/shm)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _temporary_engine(dag: DAG, *, heartbeats: bool
                      ) -> tuple[Any, MemoryStore, SequentialExecutor, Settings]:
    """A store in memory, a temporary log folder and an executor with the settings' runner.

    ``heartbeats``: whether running tries mark themselves alive (only ``test_dag``'s own
    driver watches this store, and it needs none from tries in its own process).
    """
    settings = load_settings()
    folder = tempfile.TemporaryDirectory(prefix=f"mlpipe-test-{dag.dag_id}-",
                                         dir=_scratch_dir())
    root = Path(folder.name)
    store = MemoryStore()
    runner = TryRunner.from_settings(settings, store, lambda _: dag, logs_root=root / "logs",
                                     heartbeat_interval=None if heartbeats else 0)
    executor = SequentialExecutor()
    executor.start(ExecutionEnv(runner))
    return folder, store, executor, settings


def test_task(dag: DAG, task_id: str, *, logical_date: datetime | str | None = None,
              conf: Mapping[str, Any] | None = None) -> TaskInstance:
    """Run one task alone (upstream XComs are absent) on a throw-away store."""
    task = dag.get_task(task_id)
    if task.is_mapped:
        raise DagDefinitionError(f"task {task_id!r} is mapped; run the DAG with 'dags test'")
    folder, store, executor, _ = _temporary_engine(dag, heartbeats=True)
    record = create_dag_run(store, dag, logical_date=logical_date, conf=conf)
    key = TIKey(dag.dag_id, record.run_id, task_id, -1)
    store.transition(key, [S.NONE], S.QUEUED)
    executor.submit(Workload(key))
    run = DagRun.from_record(store.get_run(dag.dag_id, record.run_id), dag, store)
    run.keepalive = folder
    ti = run.get_task_instance(task_id)
    assert ti is not None
    return ti


def test_dag(dag: DAG, *, logical_date: datetime | str | None = None,
             conf: Mapping[str, Any] | None = None, skip_retry_delays: bool = False) -> DagRun:
    """Validate ``dag``, run it to the end in this process, and return the run.

    The per-try log files live in a temporary folder that is removed when
    the returned run is garbage-collected.
    """
    dag.validate()
    folder, store, executor, settings = _temporary_engine(dag, heartbeats=False)
    record = create_dag_run(store, dag, logical_date=logical_date, conf=conf)
    driver = DagRunDriver(store, dag, record.run_id, executor,
                          heartbeat_timeout=settings.task_lease_s,
                          skip_retry_delays=skip_retry_delays, cache_xcoms=True,
                          xcom_max_bytes=settings.xcom_max_bytes)
    run = driver.execute()
    run.keepalive = folder
    run.xcom_cache = None  # the run is handed to the caller: read the store from now on
    return run
