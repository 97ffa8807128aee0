"""The LocalExecutor's warm pool: workers fork one child per try, and tries stay isolated.

Each test drives real runs through the store; workers and tries are real processes, crashed
and killed for real (``os._exit``, a segfault, SIGKILL, a hung try past its timeout).
"""

from __future__ import annotations

import ctypes
import json
import logging
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
from mlpipe.errors import SettingsError
from mlpipe.executors import ExecutionEnv, LocalExecutor, Workload
from mlpipe.executors.local_worker import TryLimits
from mlpipe.executors.resources import SlotAllocator
from mlpipe.operators import PythonOperator
from mlpipe.runtime.models import DagRun
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

pytestmark = pytest.mark.timeout(60)

#: long enough that a lost try retried through an expired heartbeat would fail the test
LEASE_S = 60.0


def make_engine(tmp_path: Path, isolation: str, parallelism: int = 2) -> Engine:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    settings = load_settings(home=tmp_path / "home", dags_folder=dags, executor="local",
                             parallelism=parallelism, task_lease_s=LEASE_S,
                             local_isolation=isolation)
    return Engine.from_settings(settings)


@pytest.fixture(params=["fork", "reuse"])
def isolation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(tmp_path: Path, isolation: str) -> Iterator[Engine]:
    engine = make_engine(tmp_path, isolation)
    yield engine
    engine.store.dispose()


@pytest.fixture
def serial_engine(tmp_path: Path, isolation: str) -> Iterator[Engine]:
    """One worker: consecutive tries run in the same worker, unless it was replaced."""
    engine = make_engine(tmp_path, isolation, parallelism=1)
    yield engine
    engine.store.dispose()


def worker_of(isolation: str, pid: int, ppid: int) -> int:
    """The pool worker a try ran in: its parent (``fork``) or its own process (``reuse``)."""
    return ppid if isolation == "fork" else pid


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


def test_tries_run_in_the_pool_workers_which_stay(engine: Engine, isolation: str) -> None:
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    assert executor.isolation == isolation
    dag = pid_chain("v1")
    try:
        seen = final_value(engine, dag, "r1", executor)
        pids = [pid for _, pid, _ in seen]
        workers = {worker_of(isolation, pid, ppid) for _, pid, ppid in seen}
        assert os.getpid() not in pids
        if isolation == "fork":  # each try in a fresh child of a worker
            assert len(set(pids)) == len(pids) == 6
        assert workers <= set(executor.worker_pids)
        assert 1 <= len(workers) <= executor.parallelism == 2
        # the workers stay for the next run of the same DAG (under heavy load a worker may
        # retire when a try's thread outlives it and be replaced: at least one stays)
        again = final_value(engine, dag, "r2", executor)
        assert {worker_of(isolation, pid, ppid) for _, pid, ppid in again} & workers
    finally:
        executor.shutdown()


def test_a_worker_forked_before_a_dag_was_parsed_again_never_runs_it(
        engine: Engine, isolation: str) -> None:
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
        assert not old_workers & {worker_of(isolation, pid, ppid) for _, pid, ppid in second}
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
        assert len(executor.worker_pids) == 1  # survived (fork) or replaced (reuse)
    finally:
        executor.shutdown()


# -- leak isolation -----------------------------------------------------------------------------

FLAG = False
BALLAST_MB = 300


def _leak() -> dict[str, Any]:
    global FLAG
    FLAG = True
    ballast = bytearray(BALLAST_MB * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched: resident
    os._mlpipe_test_ballast = ballast  # type: ignore[attr-defined] - kept alive elsewhere
    os.environ["MLPIPE_TEST_LEAK"] = "leaked"
    os.chdir("/")
    threading.Thread(target=time.sleep, args=(300,), name="leaked-thread").start()
    return {"pid": os.getpid(), "ppid": os.getppid(),
            "rss_mb": psutil.Process().memory_info().rss / 2**20}


def _observe(cwd: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "ppid": os.getppid(), "global": FLAG,
            "ballast": hasattr(os, "_mlpipe_test_ballast"),
            "env": os.environ.get("MLPIPE_TEST_LEAK"), "cwd_moved": os.getcwd() != cwd,
            "threads": [t.name for t in threading.enumerate()],
            "handlers": len(logging.root.handlers),
            "sigusr1": str(signal.getsignal(signal.SIGUSR1)),
            "rss_mb": psutil.Process().memory_info().rss / 2**20}


def leak_then_observe(engine: Engine, leak: Any, limits: TryLimits | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    with DAG("leaks") as dag:
        first = PythonOperator(task_id="leak", python_callable=leak)
        observe = PythonOperator(task_id="observe", python_callable=_observe,
                                 op_args=[os.getcwd()])
        first >> observe
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    executor.limits = limits or executor.limits
    try:
        run = run_dag(engine, dag, "r1", executor)
        assert run.state == "success", run.get_task_instance("leak").log
        return (run.get_task_instance("leak").xcom_pull(),
                run.get_task_instance("observe").xcom_pull())
    finally:
        executor.shutdown()


def test_what_a_try_leaks_does_not_reach_the_next_try(serial_engine: Engine,
                                                      isolation: str) -> None:
    leaked, seen = leak_then_observe(serial_engine, _leak,
                                     TryLimits(rss_growth=BALLAST_MB // 2 * 2**20))
    first = worker_of(isolation, leaked["pid"], leaked["ppid"])
    second = worker_of(isolation, seen["pid"], seen["ppid"])
    # fork: the same worker ran both tries, each in a fresh child; reuse: the worker that
    # ran the leaking try retired after it and a fresh one ran the next
    assert (first == second) is (isolation == "fork")
    assert leaked["rss_mb"] > BALLAST_MB
    assert seen["rss_mb"] < leaked["rss_mb"] - BALLAST_MB * 0.8
    assert (seen["global"], seen["ballast"], seen["env"], seen["cwd_moved"]) == (
        False, False, None, False)
    assert "leaked-thread" not in seen["threads"]
    assert os.environ.get("MLPIPE_TEST_LEAK") is None and not FLAG


def _set_env_and_cwd() -> dict[str, Any]:
    handlers = len(logging.root.handlers)
    logging.root.addHandler(logging.StreamHandler())  # as logging.basicConfig() does
    os.environ["MLPIPE_TEST_LEAK"] = "leaked"
    os.environ.pop("MLPIPE_HOME", None)
    os.chdir("/")
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    return {"pid": os.getpid(), "ppid": os.getppid(), "rss_mb": 0, "handlers": handlers,
            "sigusr1": str(signal.getsignal(signal.SIGUSR1))}


def test_a_reused_worker_puts_back_env_and_cwd_and_keeps_going(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, "reuse", parallelism=1)
    home = os.environ["MLPIPE_HOME"]
    try:
        leaked, seen = leak_then_observe(engine, _set_env_and_cwd)
    finally:
        engine.store.dispose()
    assert leaked["pid"] == seen["pid"]  # nothing to retire it for: put back
    assert (seen["env"], seen["cwd_moved"]) == (None, False)
    assert seen["handlers"] == leaked["handlers"]
    assert seen["sigusr1"] != leaked["sigusr1"] == str(signal.SIG_IGN)
    assert os.environ["MLPIPE_HOME"] == home


def _rebind_global() -> dict[str, Any]:
    global FLAG
    FLAG = True
    return {"pid": os.getpid(), "ppid": os.getppid(), "rss_mb": 0}


def _leave_thread() -> dict[str, Any]:
    threading.Thread(target=time.sleep, args=(300,), name="leaked-thread",
                     daemon=True).start()
    return {"pid": os.getpid(), "ppid": os.getppid(), "rss_mb": 0}


def _keep_memory() -> dict[str, Any]:
    os._mlpipe_test_ballast = bytearray(b"x" * (BALLAST_MB * 2**20))  # type: ignore[attr-defined]
    return {"pid": os.getpid(), "ppid": os.getppid(), "rss_mb": 0}


@pytest.mark.parametrize("leak", [_rebind_global, _leave_thread, _keep_memory],
                         ids=["global", "thread", "memory"])
def test_a_reused_worker_retires_after_each_kind_of_leak(tmp_path: Path, leak: Any) -> None:
    engine = make_engine(tmp_path, "reuse", parallelism=1)
    try:
        leaked, seen = leak_then_observe(engine, leak,
                                         TryLimits(rss_growth=BALLAST_MB // 2 * 2**20))
    finally:
        engine.store.dispose()
    assert leaked["pid"] != seen["pid"]
    assert (seen["global"], seen["ballast"]) == (False, False)
    assert "leaked-thread" not in seen["threads"]


class _SlotExecutor(LocalExecutor):
    """Sets a per-try variable, as resource slots set ``CUDA_VISIBLE_DEVICES``."""

    def try_environment(self, workload: Workload) -> dict[str, str]:
        return {"MLPIPE_TEST_SLOT": f"{workload.key.task_id}:{workload.resources.get('gpu')}"}


def test_each_try_gets_its_own_environment_and_resources(serial_engine: Engine) -> None:
    def seen() -> str:
        return f"{os.environ['MLPIPE_TEST_SLOT']}|{os.environ.get('CUDA_VISIBLE_DEVICES')}"

    with DAG("slots") as dag:
        first = PythonOperator(task_id="first", resources={"gpu": 1}, python_callable=seen)
        second = PythonOperator(task_id="second", python_callable=seen)
        first >> second
    executor = _SlotExecutor(parallelism=1)
    executor.slots = SlotAllocator([0])  # as MLPIPE_GPUS=0 declares one GPU
    executor.start(ExecutionEnv(serial_engine.try_runner()))
    try:
        run = run_dag(serial_engine, dag, "r1", executor)
    finally:
        executor.shutdown()
    assert run.get_task_instance("first").xcom_pull() == "first:1|0"
    assert run.get_task_instance("second").xcom_pull() == "second:None|None"
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
        engine: Engine, tmp_path: Path, isolation: str) -> None:
    with DAG("killed_worker") as dag:
        PythonOperator(task_id="sleeper", python_callable=_sleeper, retries=1, retry_delay=0)
    pid_file = tmp_path / "sleeper.json"
    executor = engine.make_executor("local")
    assert isinstance(executor, LocalExecutor)
    seen: dict[str, Any] = {}

    def kill_the_worker() -> None:
        assert wait_for(pid_file.exists)
        seen.update(json.loads(pid_file.read_text()))
        seen["worker"] = worker_of(isolation, seen["pid"], seen["worker"])
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
        assert ti.pid != seen["worker"]
        assert wait_for(lambda: not processes([seen["pid"]]), within=5)  # its try is gone
    finally:
        executor.shutdown()


def _hang(conf: Any, ti: Any) -> str:
    if ti.try_number > 1:
        return f"ran in {os.getpid()} {os.getppid()}"
    # deaf to the soft timeout (SIGALRM), as a try stuck in native code is
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    _write_json(conf["pid_file"], {"pid": os.getpid(), "worker": os.getppid()})
    time.sleep(60)
    return "not reached"


def test_a_hung_try_past_its_timeout_is_killed(serial_engine: Engine, tmp_path: Path,
                                               isolation: str) -> None:
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
        pid, ppid = map(int, ti.xcom_pull().split()[2:])
        if isolation == "fork":  # the same worker ran the retry in a fresh child
            assert ppid == hung["worker"]
        else:  # the worker was the hung try's process: a new one ran the retry
            assert pid != hung["pid"] and pid in executor.worker_pids
    finally:
        executor.shutdown()


def test_an_unknown_isolation_is_refused_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_LOCAL_ISOLATION", "thread")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == ("setting MLPIPE_LOCAL_ISOLATION: unknown isolation 'thread'; "
                                 "valid: ['fork', 'reuse']")
    with pytest.raises(ValueError, match="unknown isolation 'thread'"):
        LocalExecutor(isolation="thread")
