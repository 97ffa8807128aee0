"""The same cluster on RabbitMQ (``amqp://``): a DAG of CPU and GPU-queue tasks runs once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import AMQP_URL, Worker, make_cluster, migrate

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_the_queues_dag_runs_once_through_rabbitmq(
        postgres_databases: Callable[[], str], module_tmp: Path,
        start_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = make_cluster(AMQP_URL, postgres_databases, module_tmp)
    migrate(cluster)
    p = cluster.prefix
    worker = start_worker(cluster, "rabbit", "-q", f"{p}default,{p}gpu", "-c", "2",
                          "--gpus", "0")
    cluster.use_here(monkeypatch)
    engine = Engine.from_settings(load_settings(), migrate=False)
    try:
        dag = engine.get_dag("celery_queues")
        run_id = engine.trigger(dag).run_id
        assert engine.run(dag, run_id).state.value == "success"
        records = engine.store.list_tis("celery_queues", run_id)
        assert {r.task_id: (r.state, r.try_number) for r in records} == {
            t: ("success", 1) for t in ("prepare", "train_0", "train_1", "report")}
        steps = engine.store.transitions("celery_queues", run_id)
        assert sum(1 for s in steps if s.to_state == "running") == 4  # each ran once
        for record in records:
            value = json.loads(engine.store.get_xcoms("celery_queues", run_id, record.task_id,
                                                      "return_value")[-1])
            assert value["home"] == str(worker.home)
    finally:
        engine.store.dispose()
        worker.stop()
        _delete_queues(f"{p}default", f"{p}gpu")


def _delete_queues(*names: str) -> None:
    """The vhost is shared: leave no test queue behind."""
    from kombu import Connection

    with Connection(AMQP_URL) as conn:
        for name in names:
            conn.default_channel.queue_delete(name)


