"""``dag.test()``: the production engine, in this process, on a temporary SQLite store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mlpipe.core.dag import DAG
from mlpipe.executors.base import ExecutionEnv
from mlpipe.executors.sequential import SequentialExecutor
from mlpipe.runtime.models import DagRun
from mlpipe.scheduler.dagrun_driver import DagRunDriver
from mlpipe.scheduler.runs import create_dag_run
from mlpipe.settings import load_settings
from mlpipe.store.metadata_store import MetadataStore


def _scratch_dir() -> str | None:
    """A memory-backed folder for throw-away stores when there is one (Linux /dev/shm)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def test_dag(dag: DAG, *, logical_date: datetime | str | None = None,
             conf: Mapping[str, Any] | None = None, skip_retry_delays: bool = False) -> DagRun:
    """Validate ``dag``, run it to the end in this process, and return the run.

    The store and the per-try log files live in a temporary folder that is removed when
    the returned run is garbage-collected.
    """
    dag.validate()
    settings = load_settings()
    folder = tempfile.TemporaryDirectory(prefix=f"mlpipe-test-{dag.dag_id}-",
                                         dir=_scratch_dir())
    root = Path(folder.name)
    url = f"sqlite:///{root / 'mlpipe.db'}"
    store = MetadataStore.open(url)
    record = create_dag_run(store, dag, logical_date=logical_date, conf=conf)
    executor = SequentialExecutor()
    executor.start(ExecutionEnv(store=store, store_url=url, dag_provider=lambda _: dag,
                                logs_root=root / "logs", xcom_max_bytes=settings.xcom_max_bytes,
                                heartbeat_interval=settings.task_heartbeat_timeout / 6))
    driver = DagRunDriver(store, dag, record.run_id, executor,
                          heartbeat_timeout=settings.task_heartbeat_timeout,
                          skip_retry_delays=skip_retry_delays,
                          xcom_max_bytes=settings.xcom_max_bytes)
    run = driver.execute()
    run.keepalive = folder
    return run
