"""The LocalExecutor's single reaper thread: every child reported, and stopped on shutdown."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from mlpipe.executors import Workload
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

DAGS = Path(__file__).resolve().parents[1] / "dags" / "engine"


def test_many_children_are_each_reported_once_and_shutdown_stops_the_reaper() -> None:
    engine = Engine.from_settings(load_settings(executor="local", parallelism=2,
                                                task_lease_s=2, dags_folder=DAGS))
    try:
        dag = engine.get_dag("executor_contract")
        record = engine.trigger(dag, run_id="reaper", logical_date=datetime(2024, 1, 1))
        keys = [TIKey(dag.dag_id, record.run_id, t, -1) for t in sorted(dag.task_dict)][:4]
        executor = engine.make_executor("local")
        reapers = [t for t in threading.enumerate() if t.name == "mlpipe-reaper"]
        for key in keys:
            assert engine.store.queue(key, ["none"]) == "queued"
            executor.submit(Workload(key))
        events = []
        while len(events) < len(keys):
            events.extend(executor.poll(30))
        assert sorted(e.key for e in events) == sorted(keys)
        assert all(e.exit_code == 0 and e.claimed for e in events)
        executor.shutdown()
        assert not any(t.is_alive() for t in reapers)
        assert executor.busy == 0
    finally:
        engine.store.dispose()
