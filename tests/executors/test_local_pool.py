"""The LocalExecutor's warm pool: workers fork one child per try, and tries stay isolated.

Each test drives real runs through the store; workers and tries are real processes, crashed
and killed for real (``os._exit``, a segfault, SIGKILL, a hung try past its timeout).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlpipe import DAG, task
from mlpipe.executors import ExecutionEnv, LocalExecutor, Workload
from mlpipe.operators import PythonOperator
from mlpipe.runtime.models import DagRun
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

pytestmark = pytest.mark.timeout(60)

#: long enough that a lost try retried through an expired heartbeat would fail the test
LEASE_S = 60.0


def make_engine(tmp_path: Path, parallelism: int = 2) -> Engine:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    settings = load_settings(home=tmp_path / "home", dags_folder=dags, executor="local",
                             parallelism=parallelism, task_lease_s=LEASE_S)
    return Engine.from_settings(settings)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(tmp_path)
    yield engine
    engine.store.dispose()


@pytest.fixture
def serial_engine(tmp_path: Path) -> Iterator[Engine]:
    """One worker: consecutive tries run in children of the same worker process."""
    engine = make_engine(tmp_path, parallelism=1)
    yield engine
    engine.store.dispose()


def run_dag(engine: Engine, dag: DAG, run_id: str, executor: LocalExecutor | None = None,
            conf: dict[str, Any] | None = None) -> DagRun:
    engine.trigger(dag, run_id=run_id, conf=conf)
    return engine.run(dag, run_id, executor=executor)


def pid_chain(version: str, length: int = 6) -> DAG:
    """``length`` tasks in a row; each returns ``[(version, pid, worker pid), ...]`` so far."""
    with DAG("pids") as dag:
        @task
        def first() -> list[list[object]]:
            return [[version, os.getpid(), os.getppid()]]

        @task
        def step(seen: list[list[object]]) -> list[list[object]]:
            return [*seen, [version, os.getpid(), os.getppid()]]

        value = first()
        for _ in range(length - 1):
            value = step(value)
    return dag


def final_value(engine: Engine, dag: DAG, run_id: str, executor: LocalExecutor) -> list:
    run = run_dag(engine, dag, run_id, executor)
    assert run.state == "success"
    ti = run.get_task_instance(dag.topological_sort()[-1].task_id)
    assert ti is not None
    return ti.xcom_pull()


def processes(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (not gone, not zombies)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def descendants() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE]


def wait_for(condition: Any, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_every_try_runs_in_a_fresh_child_of_a_pool_worker(engine: Engine) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    dag = pid_chain("v1")
    try:
        seen = final_value(engine, dag, "r1", executor)
        pids = [pid for _, pid, _ in seen]
        workers = {worker for _, _, worker in seen}
        assert len(set(pids)) == len(pids) == 6
        assert os.getpid() not in pids
        assert workers <= set(executor.worker_pids)  # forked by the pool's workers
        assert 1 <= len(workers) <= executor.parallelism == 2
        # the workers stay for the next run of the same DAG
        again = final_value(engine, dag, "r2", executor)
        assert {worker for _, _, worker in again} <= workers
    finally:
        executor.shutdown()


def test_a_worker_forked_before_a_dag_was_parsed_again_never_runs_it(engine: Engine) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    try:
        first = final_value(engine, pid_chain("v1"), "r1", executor)
        assert {version for version, _, _ in first} == {"v1"}
        old_workers = set(executor.worker_pids)
        assert old_workers, "workers wait for the next run"
        # the same dag_id, defined again (as a changed DAG file would be): the workers
        # hold the old definition in their memory and must not run the new one
        second = final_value(engine, pid_chain("v2"), "r2", executor)
        assert {version for version, _, _ in second} == {"v2"}
        assert not old_workers & {worker for _, _, worker in second}
    finally:
        executor.shutdown()


def test_idle_workers_are_retired_and_shutdown_leaves_no_process(engine: Engine) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    executor.worker_idle = 0.3
    try:
        dag = pid_chain("v1", length=3)
        final_value(engine, dag, "r1", executor)
        assert wait_for(lambda: descendants() == []), descendants()
        # and a later run gets a new pool
        assert len(final_value(engine, dag, "r2", executor)) == 3
    finally:
        executor.shutdown()
    assert wait_for(lambda: descendants() == [], within=10), descendants()


# -- crash isolation ----------------------------------------------------------------------------

def _exit_hard(ti: Any) -> str:
    print(f"exit try {ti.try_number}")
    if ti.try_number == 1:
        os._exit(1)
    return f"exit survived on try {ti.try_number}"


def _segfault(ti: Any) -> str:
    print(f"segfault try {ti.try_number}")
    if ti.try_number == 1:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return f"segfault survived on try {ti.try_number}"


def test_a_try_that_crashes_its_process_fails_only_that_try(serial_engine: Engine) -> None:
    with DAG("crashes") as dag:
        hard = PythonOperator(task_id="exit", python_callable=_exit_hard, retries=1,
                              retry_delay=0)
        segv = PythonOperator(task_id="segfault", python_callable=_segfault, retries=1,
                              retry_delay=0)
        after = PythonOperator(task_id="after", python_callable=lambda: "after ran")
        hard >> segv >> after
    executor = serial_engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    try:
        began = time.monotonic()
        run = run_dag(serial_engine, dag, "r1", executor)
        assert time.monotonic() - began < LEASE_S  # retried at once, not after a lease
        assert run.state == "success"
        for task_id, code in (("exit", 1), ("segfault", -11)):
            ti = run.get_task_instance(task_id)
            assert (ti.state, ti.try_number) == ("success", 2)
            first, second = ti.try_log(1), ti.try_log(2)  # each try has its own log
            assert f"{task_id} try 1" in first and f"{task_id} try 2" not in first
            assert f"task process exited with code {code} without a result" in first
            assert f"{task_id} try 2" in second and f"{task_id} survived on try 2" in second
        assert run.get_task_instance("after").xcom_pull() == "after ran"
        assert len(executor.worker_pids) == 1  # the one worker survived every crash
    finally:
        executor.shutdown()


# -- leak isolation -----------------------------------------------------------------------------

LEAKED: list[bytearray] = []
STATE = {"set_by_a_try": False}


def _leak() -> dict[str, Any]:
    STATE["set_by_a_try"] = True
    LEAKED.append(bytearray(300 * 1024 * 1024))  # touched: 300 MB resident
    LEAKED[-1][::4096] = b"x" * len(LEAKED[-1][::4096])
    os.environ["MLPIPE_TEST_LEAK"] = "leaked"
    os.chdir("/")
    threading.Thread(target=time.sleep, args=(300,), name="leaked-thread").start()
    return {"worker": os.getppid(), "rss_mb": psutil.Process().memory_info().rss / 2**20}


def _observe(cwd: str) -> dict[str, Any]:
    return {"worker": os.getppid(), "global": STATE["set_by_a_try"], "leaked": len(LEAKED),
            "env": os.environ.get("MLPIPE_TEST_LEAK"), "cwd_moved": os.getcwd() != cwd,
            "threads": [t.name for t in threading.enumerate()],
            "rss_mb": psutil.Process().memory_info().rss / 2**20}


def test_what_a_try_leaks_does_not_reach_the_next_try(serial_engine: Engine) -> None:
    with DAG("leaks") as dag:
        leak = PythonOperator(task_id="leak", python_callable=_leak)
        observe = PythonOperator(task_id="observe", python_callable=_observe,
                                 op_args=[os.getcwd()])
        leak >> observe
    executor = serial_engine.make_executor("local")
    try:
        run = run_dag(serial_engine, dag, "r1", executor)
        assert run.state == "success"
        leaked = run.get_task_instance("leak").xcom_pull()
        seen = run.get_task_instance("observe").xcom_pull()
    finally:
        executor.shutdown()
    assert seen["worker"] == leaked["worker"]  # the same worker ran both tries
    assert leaked["rss_mb"] > 300
    assert seen["rss_mb"] < leaked["rss_mb"] - 250
    assert (seen["global"], seen["leaked"], seen["env"], seen["cwd_moved"]) == (
        False, 0, None, False)
    assert "leaked-thread" not in seen["threads"]
    assert os.environ.get("MLPIPE_TEST_LEAK") is None and not STATE["set_by_a_try"]


class _SlotExecutor(LocalExecutor):
    """Sets a per-try variable, as resource slots set ``CUDA_VISIBLE_DEVICES``."""

    def try_environment(self, workload: Workload) -> dict[str, str]:
        return {"MLPIPE_TEST_SLOT": f"{workload.key.task_id}:{workload.resources.get('gpu')}"}


def test_each_try_gets_its_own_environment_and_resources(serial_engine: Engine) -> None:
    with DAG("slots") as dag:
        first = PythonOperator(task_id="first", resources={"gpu": 1},
                               python_callable=lambda: os.environ["MLPIPE_TEST_SLOT"])
        second = PythonOperator(task_id="second",
                                python_callable=lambda: os.environ["MLPIPE_TEST_SLOT"])
        first >> second
    executor = _SlotExecutor(parallelism=1)
    executor.start(ExecutionEnv(serial_engine.try_runner()))
    try:
        run = run_dag(serial_engine, dag, "r1", executor)
    finally:
        executor.shutdown()
    assert run.get_task_instance("first").xcom_pull() == "first:1"
    assert run.get_task_instance("second").xcom_pull() == "second:None"
    assert "MLPIPE_TEST_SLOT" not in os.environ


# -- killed workers and hung tries ---------------------------------------------------------------

def _write_json(path: str, value: Any) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(value))
    tmp.rename(path)  # readers never see a half-written file


def _sleeper(conf: Any, ti: Any) -> str:
    print(f"sleeper try {ti.try_number}")
    if ti.try_number == 1:
        _write_json(conf["pid_file"], {"pid": os.getpid(), "worker": os.getppid()})
        time.sleep(60)
    return f"woke on try {ti.try_number} in worker {os.getppid()}"


def test_a_worker_killed_mid_try_is_replaced_and_the_try_retried_within_a_lease(
        engine: Engine, tmp_path: Path) -> None:
    with DAG("killed_worker") as dag:
        PythonOperator(task_id="sleeper", python_callable=_sleeper, retries=1, retry_delay=0)
    pid_file = tmp_path / "sleeper.json"
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    seen: dict[str, Any] = {}

    def kill_the_worker() -> None:
        assert wait_for(pid_file.exists)
        seen.update(json.loads(pid_file.read_text()))
        os.kill(seen["worker"], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker, daemon=True)
    killer.start()
    try:
        began = time.monotonic()
        run = run_dag(engine, dag, "r1", executor, conf={"pid_file": str(pid_file)})
        assert time.monotonic() - began < LEASE_S  # not through an expired heartbeat
        killer.join(5)
        ti = run.get_task_instance("sleeper")
        assert run.state == "success", ti.log
        assert (ti.state, ti.try_number) == ("success", 2)
        assert "task process exited with code -9 without a result" in ti.try_log(1)
        assert "sleeper try 2" in ti.try_log(2) and "sleeper try 2" not in ti.try_log(1)
        assert seen["worker"] not in executor.worker_pids  # replaced
        assert f"in worker {seen['worker']}" not in ti.xcom_pull()
        assert wait_for(lambda: not processes([seen["pid"]]), within=5)  # its try is gone
    finally:
        executor.shutdown()


def _hang(conf: Any, ti: Any) -> str:
    if ti.try_number > 1:
        return f"ran in worker {os.getppid()}"
    # deaf to the soft timeout (SIGALRM), as a try stuck in native code is
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    _write_json(conf["pid_file"], {"pid": os.getpid(), "worker": os.getppid()})
    time.sleep(60)
    return "not reached"


def test_a_hung_try_past_its_timeout_is_killed_and_its_worker_goes_on(
        serial_engine: Engine, tmp_path: Path) -> None:
    with DAG("hung") as dag:
        PythonOperator(task_id="hang", python_callable=_hang, execution_timeout=0.5,
                       retries=1, retry_delay=0)
    pid_file = tmp_path / "hang.json"
    executor = serial_engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    executor.kill_grace = 1.0
    try:
        run = run_dag(serial_engine, dag, "r1", executor, conf={"pid_file": str(pid_file)})
        hung = json.loads(pid_file.read_text())
        ti = run.get_task_instance("hang")
        assert run.state == "success", ti.log
        assert (ti.state, ti.try_number) == ("success", 2)
        assert "task process exited with code -9 without a result" in ti.try_log(1)
        assert not processes([hung["pid"]])
        # the same worker ran the retry in a fresh child
        assert ti.xcom_pull() == f"ran in worker {hung['worker']}"
    finally:
        executor.shutdown()
