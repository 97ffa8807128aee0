"""Two ``mlpipe worker`` processes on Redis and PostgreSQL: routing by queue, GPU slots,
pools across workers, requests no worker can serve, a message delivered twice, a worker
SIGKILLed mid-try, and remote logs. The runs are driven by this process's engine."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Cluster, Worker

from mlpipe.core.states import TaskInstanceState as S
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def workers(cluster: Cluster, start_worker: Callable[..., Worker]) -> dict[str, Worker]:
    """``cpu`` takes default and shared; ``gpu`` declares GPU 0 and takes gpu and shared."""
    p = cluster.prefix
    cpu = start_worker(cluster, "cpu", "-q", f"{p}default,{p}shared", "-c", "2", ready=False)
    gpu = start_worker(cluster, "gpu", "-q", f"{p}gpu,{p}shared", "-c", "2", "--gpus", "0",
                       ready=False)
    cpu.wait_ready()
    gpu.wait_ready()
    return {"cpu": cpu, "gpu": gpu}


@pytest.fixture
def engine(cluster: Cluster, workers: dict[str, Worker],
           monkeypatch: pytest.MonkeyPatch) -> Engine:
    cluster.use_here(monkeypatch)
    engine = Engine.from_settings(load_settings(), migrate=False)
    yield engine
    engine.store.dispose()


def _run(engine: Engine, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, str]:
    dag = engine.get_dag(dag_id)
    run_id = engine.trigger(dag, conf=conf).run_id
    return run_id, engine.run(dag, run_id).state.value


def _returned(engine: Engine, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    values = {}
    for record in engine.store.list_tis(dag_id, run_id):
        xcoms = engine.store.get_xcoms(dag_id, run_id, record.task_id, "return_value")
        if xcoms:
            values[record.task_id] = json.loads(xcoms[-1])
    return values


def test_each_task_runs_on_a_worker_of_its_queue_and_gpu_tries_never_overlap(
        engine: Engine, workers: dict[str, Worker]) -> None:
    run_id, state = _run(engine, "celery_queues")

    assert state == "success"
    ran = _returned(engine, "celery_queues", run_id)
    assert ran["prepare"]["home"] == ran["report"]["home"] == str(workers["cpu"].home)
    for name in ("train_0", "train_1"):
        assert ran[name]["home"] == str(workers["gpu"].home)
        assert ran[name]["cuda"] == "0"  # the worker's one GPU, and only it
    assert ran["prepare"]["cuda"] is None
    a, b = sorted((ran["train_0"], ran["train_1"]), key=lambda r: r["start"])
    assert a["end"] <= b["start"], "two 1-GPU tries overlapped on a 1-GPU worker"
    assert a["pid"] != b["pid"]  # each try in a process of its own


def test_a_pool_of_one_slot_holds_across_workers(engine: Engine,
                                                 workers: dict[str, Worker]) -> None:
    engine.store.set_pool("single", 1)
    run_id, state = _run(engine, "celery_pool")

    assert state == "success"
    ran = sorted(_returned(engine, "celery_pool", run_id).values(), key=lambda r: r["start"])
    assert len(ran) == 3
    for earlier, later in itertools.pairwise(ran):
        assert earlier["end"] <= later["start"], "two tries of a one-slot pool overlapped"


def test_a_request_no_worker_can_serve_fails_with_one_line(engine: Engine) -> None:
    run_id, state = _run(engine, "celery_too_big")

    assert state == "failed"
    record = engine.store.get_ti(TIKey("celery_too_big", run_id, "needs_two_gpus"))
    assert record.state == S.FAILED
    assert record.error.startswith("worker gpu@test: needs 2 GPU(s) but only 1 are declared")
    assert "\n" not in record.error
