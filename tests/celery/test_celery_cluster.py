"""Two ``mlpipe worker`` processes on Redis and PostgreSQL: routing by queue, GPU slots,
pools across workers, requests no worker can serve, a message delivered twice, a worker
SIGKILLed mid-try, and remote logs. The runs are driven by this process's engine."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
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
    # a try's output goes to its own log (secrets masked there), not to the worker's
    assert "Returned value was" not in workers["gpu"].output()
    assert "running in process" in workers["gpu"].output()


@pytest.mark.parametrize("dag_id", ["celery_pool", "celery_max_active"])
def test_a_pool_of_one_slot_and_max_active_tasks_hold_across_workers(
        engine: Engine, workers: dict[str, Worker], dag_id: str) -> None:
    engine.store.set_pool("single", 1)
    run_id, state = _run(engine, dag_id)

    assert state == "success"
    ran = sorted(_returned(engine, dag_id, run_id).values(), key=lambda r: r["start"])
    assert len(ran) == 3
    assert {r["home"] for r in ran} <= {str(w.home) for w in workers.values()}
    for earlier, later in itertools.pairwise(ran):
        assert earlier["end"] <= later["start"], "two tries of a one-slot pool overlapped"


def test_a_request_no_worker_can_serve_fails_with_one_line(engine: Engine) -> None:
    run_id, state = _run(engine, "celery_too_big")

    assert state == "failed"
    record = engine.store.get_ti(TIKey("celery_too_big", run_id, "needs_two_gpus"))
    assert record.state == S.FAILED
    assert record.error.startswith("worker gpu@test: needs 2 GPU(s) but only 1 are declared")
    assert "\n" not in record.error


def _wait_for(condition: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_message_delivered_twice_runs_the_try_once(
        engine: Engine, cluster: Cluster, workers: dict[str, Worker], tmp_path: Path) -> None:
    from mlpipe.executors.celery.app import RUN_TRY, TryMessage, make_app

    journal = tmp_path / "journal.txt"
    dag = engine.get_dag("celery_once")
    run_id = engine.trigger(dag, conf={"journal": str(journal)}).run_id
    key = TIKey("celery_once", run_id, "once")
    assert engine.store.transition(key, ["none"], "queued")
    app = make_app(cluster.broker_url)
    message = TryMessage(key, try_number=1, attempt=0)
    for _ in range(2):  # the broker redelivering it, or a sender retrying
        app.send_task(RUN_TRY, args=message.args(), queue=f"{cluster.prefix}default")
    app.close()

    _wait_for(lambda: engine.store.get_ti(key).state == "success", "the try to succeed")
    _wait_for(lambda: f"{key} try 1: ignored" in workers["cpu"].output(),
              "the second delivery to be turned away")
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("1 ")  # one execution, try 1
    assert engine.store.get_ti(key).try_number == 1


def test_a_worker_killed_mid_try_is_retried_once_without_overlap_and_its_logs_outlive_it(
        engine: Engine, cluster: Cluster, start_worker: Callable[..., Worker],
        tmp_path: Path) -> None:
    kill_queue = f"{cluster.prefix}kill"
    doomed = start_worker(cluster, "doomed", "-q", kill_queue, "-c", "1")
    markers = tmp_path / "markers"
    markers.mkdir()
    dag = engine.get_dag("celery_kill")
    run_id = engine.trigger(dag, conf={"markers": str(markers)}).run_id
    key = TIKey("celery_kill", run_id, "killable")
    result: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: result.update(run=engine.run(dag, run_id)))
    driver.start()
    try:
        first = _wait_for(lambda: (markers / "try-1").exists() and
                          (markers / "try-1").read_text(), "try 1 to start")
        remote = cluster.root / "remote_logs"
        _wait_for(lambda: list(remote.glob(f"dag_id=celery_kill/run_id={run_id}/**/"
                                           "attempt=1.log")),
                  "a partial copy of try 1's log")
        doomed.kill()
        _wait_for(lambda: not _alive(int(first)), "try 1's process to die with its worker")
        rescuer = start_worker(cluster, "rescuer", "-q", kill_queue, "-c", "1")
        driver.join(timeout=120)
        assert not driver.is_alive()
    finally:
        driver.join(timeout=1)

    assert result["run"].state.value == "success"
    record = engine.store.get_ti(key)
    assert record.try_number == 2
    ran = _returned(engine, "celery_kill", run_id)["killable"]
    assert ran["home"] == str(rescuer.home)
    assert ran["previous_alive"] is False  # try 2 started after try 1's process was gone
    steps = [(t.from_state, t.to_state) for t in engine.store.transitions("celery_kill", run_id)]
    assert steps.count(("queued", "running")) == 2
    assert ("running", "up_for_retry") in steps

    # Both workers' homes gone: the logs are read from MLPIPE_REMOTE_LOG_URI.
    rescuer.stop()
    for home in (doomed.home, rescuer.home):
        shutil.rmtree(home)
    reader_home = tmp_path / "reader_home"
    reader_home.mkdir()
    for try_number, expected in ((1, "Starting try 1"), (2, "Starting try 2")):
        out = subprocess.run(
            [sys.executable, "-m", "mlpipe", "tasks", "logs", "celery_kill", "killable",
             run_id, "--try", str(try_number)],
            env=cluster.env(reader_home), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "remote_logs" in out.stdout and expected in out.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_lets_the_running_try_finish_before_the_worker_exits(
        engine: Engine, cluster: Cluster, start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(cluster, "term", "-q", f"{cluster.prefix}term", "-c", "1")
    dag = engine.get_dag("celery_nap")
    run_id = engine.trigger(dag).run_id
    key = TIKey("celery_nap", run_id, "nap")
    result: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: result.update(run=engine.run(dag, run_id)))
    driver.start()
    try:
        _wait_for(lambda: engine.store.get_ti(key).state == "running", "the try to start")
        os.kill(worker.process.pid, signal.SIGTERM)  # what a service manager sends
        assert worker.process.wait(timeout=90) == 0
        driver.join(timeout=90)
    finally:
        driver.join(timeout=1)

    assert result["run"].state.value == "success"
    record = engine.store.get_ti(key)
    assert (record.state, record.try_number) == ("success", 1)
    assert _returned(engine, "celery_nap", run_id)["nap"]["home"] == str(worker.home)


def test_the_heaviest_priority_weight_is_served_first(
        engine: Engine, cluster: Cluster, start_worker: Callable[..., Worker]) -> None:
    dag = engine.get_dag("celery_priority")
    run_id = engine.trigger(dag).run_id
    result: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: result.update(run=engine.run(dag, run_id)))
    driver.start()
    try:  # all three wait in the broker before a one-slot worker takes them
        _wait_for(lambda: [s for _, _, s in engine.store.ti_states("celery_priority", run_id)]
                  == ["queued"] * 3, "the three tries to be queued")
        start_worker(cluster, "prio", "-q", f"{cluster.prefix}prio", "-c", "1")
        driver.join(timeout=120)
    finally:
        driver.join(timeout=1)

    assert result["run"].state.value == "success"
    ran = _returned(engine, "celery_priority", run_id)
    assert sorted(ran, key=lambda t: ran[t]["start"]) == ["weight_9", "weight_5", "weight_1"]


def test_a_real_scheduler_process_drives_runs_through_the_workers(
        engine: Engine, cluster: Cluster, workers: dict[str, Worker], tmp_path: Path) -> None:
    home = tmp_path / "scheduler_home"
    home.mkdir()
    log = tmp_path / "scheduler.log"
    with open(log, "wb") as out:
        scheduler = subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler"],
                                     env=cluster.env(home, MLPIPE_EXECUTOR="celery"),
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
    try:
        run_id = engine.trigger(engine.get_dag("celery_queues")).run_id
        state = _wait_for(lambda: (s := engine.store.get_run("celery_queues", run_id).state)
                          in ("success", "failed") and s, "the scheduler to end the run",
                          within=120)
        assert state == "success", log.read_text()[-3000:]
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(timeout=60)
    ran = _returned(engine, "celery_queues", run_id)
    assert ran["prepare"]["home"] == str(workers["cpu"].home)
    assert ran["train_0"]["home"] == str(workers["gpu"].home)
