"""dag.test(): retries (delays, backoff, logs of every try) and execution_timeout."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlpipe import DAG, task
from mlpipe.core.retries import retry_delay_for
from mlpipe.operators import BashOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def _flaky(failures: int, tries: list[float]):
    """A callable that fails its first ``failures`` calls, printing which try it is."""

    def body(ti) -> str:
        tries.append(time.monotonic())
        n = len(tries)
        if n <= failures:
            print(f"try {n} (ti says {ti.try_number}) failing")
            raise RuntimeError(f"transient problem number {n}")
        print(f"try {n} (ti says {ti.try_number}) works")
        return "done"

    return body


def test_task_succeeds_on_third_try_with_two_retries() -> None:
    tries: list[float] = []
    with DAG("retry_ok", start_date=LOGICAL) as dag:
        flaky = PythonOperator(task_id="flaky", python_callable=_flaky(2, tries), retries=2,
                               retry_delay=0)
        after = PythonOperator(task_id="after", python_callable=lambda: "after ran")
        flaky >> after

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("flaky")
    assert run.state == "success"
    assert ti.state == "success"
    assert ti.try_number == 3
    assert ti.xcom_pull() == "done"
    assert run.get_task_instance("after").state == "success"
    for line in ["try 1 (ti says 1) failing", "transient problem number 1",
                 "try 2 (ti says 2) failing", "transient problem number 2",
                 "try 3 (ti says 3) works"]:
        assert line in ti.log
    assert ti.log.index("try 1 (ti says 1)") < ti.log.index("try 2 (ti says 2)") < \
        ti.log.index("try 3 (ti says 3)")


def test_exhausted_retries_fail_the_task_and_its_downstream() -> None:
    tries: list[float] = []
    with DAG("retry_exhausted", start_date=LOGICAL) as dag:
        flaky = PythonOperator(task_id="flaky", python_callable=_flaky(10, tries), retries=2,
                               retry_delay=timedelta(0))
        after = PythonOperator(task_id="after", python_callable=lambda: None)
        flaky >> after

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("flaky")
    assert len(tries) == 3
    assert ti.state == "failed"
    assert ti.try_number == 3
    assert "transient problem number 3" in ti.log
    assert run.get_task_instance("after").state == "upstream_failed"
    assert run.state == "failed"


def test_taskflow_retries_and_default_args_retries() -> None:
    tries_a: list[float] = []
    tries_b: list[float] = []
    with DAG("retry_kinds", start_date=LOGICAL,
             default_args={"retries": 1, "retry_delay": timedelta(0)}) as dag:
        PythonOperator(task_id="from_default_args", python_callable=_flaky(1, tries_a))

        @task(retries=3, retry_delay=timedelta(0))
        def from_decorator(ti) -> str:
            return _flaky(3, tries_b)(ti)

        from_decorator()

    run = dag.test(LOGICAL)

    assert run.get_task_instance("from_default_args").try_number == 2
    assert run.get_task_instance("from_decorator").try_number == 4
    assert run.state == "success"


def test_no_retries_means_a_single_try() -> None:
    tries: list[float] = []
    with DAG("no_retry", start_date=LOGICAL) as dag:
        PythonOperator(task_id="once", python_callable=_flaky(1, tries))

    run = dag.test(LOGICAL)

    assert len(tries) == 1
    assert run.get_task_instance("once").try_number == 1
    assert run.get_task_instance("once").state == "failed"


def test_retry_delay_is_waited_for_real() -> None:
    tries: list[float] = []
    with DAG("retry_wait", start_date=LOGICAL) as dag:
        PythonOperator(task_id="flaky", python_callable=_flaky(1, tries), retries=1,
                       retry_delay=timedelta(seconds=0.3))

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert len(tries) == 2
    assert tries[1] - tries[0] >= 0.3


def test_skip_retry_delays_does_not_wait() -> None:
    tries: list[float] = []
    with DAG("retry_nowait", start_date=LOGICAL) as dag:
        PythonOperator(task_id="flaky", python_callable=_flaky(2, tries), retries=2,
                       retry_delay=timedelta(minutes=5))

    started = time.monotonic()
    run = dag.test(LOGICAL, skip_retry_delays=True)

    assert time.monotonic() - started < 5
    assert run.get_task_instance("flaky").try_number == 3
    assert run.state == "success"


def test_waiting_retry_does_not_hold_up_other_ready_tasks() -> None:
    order: list[str] = []
    tries: list[float] = []

    def flaky(ti) -> None:
        order.append(f"flaky#{ti.try_number}")
        _flaky(1, tries)(ti)

    with DAG("retry_parallel", start_date=LOGICAL) as dag:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=1,
                       retry_delay=timedelta(seconds=0.3))
        b = PythonOperator(task_id="b", python_callable=lambda: order.append("b"))
        c = PythonOperator(task_id="c", python_callable=lambda: order.append("c"))
        b >> c

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert order.index("c") < order.index("flaky#2")


@pytest.mark.parametrize(("try_number", "expected"), [(1, 10), (2, 20), (3, 40), (4, 80)])
def test_exponential_backoff_doubles_each_try(try_number: int, expected: int) -> None:
    delay = retry_delay_for(try_number, retry_delay=timedelta(seconds=10),
                            exponential_backoff=True, max_retry_delay=None)
    assert delay == timedelta(seconds=expected)


def test_exponential_backoff_is_capped_by_max_retry_delay() -> None:
    delays = [retry_delay_for(n, retry_delay=timedelta(seconds=10), exponential_backoff=True,
                              max_retry_delay=timedelta(seconds=30)) for n in range(1, 6)]
    assert delays == [timedelta(seconds=s) for s in (10, 20, 30, 30, 30)]


def test_without_backoff_the_delay_is_constant() -> None:
    delays = [retry_delay_for(n, retry_delay=timedelta(minutes=5), exponential_backoff=False,
                              max_retry_delay=None) for n in range(1, 5)]
    assert delays == [timedelta(minutes=5)] * 4


def test_zero_delay_stays_zero_with_backoff() -> None:
    assert retry_delay_for(3, retry_delay=timedelta(0), exponential_backoff=True,
                           max_retry_delay=None) == timedelta(0)


def test_backoff_delays_are_used_between_real_tries() -> None:
    tries: list[float] = []
    with DAG("retry_backoff", start_date=LOGICAL) as dag:
        PythonOperator(task_id="flaky", python_callable=_flaky(2, tries), retries=2,
                       retry_delay=timedelta(seconds=0.1), retry_exponential_backoff=True,
                       max_retry_delay=timedelta(seconds=0.15))

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert tries[1] - tries[0] >= 0.1
    assert tries[2] - tries[1] >= 0.15


# -- execution_timeout -------------------------------------------------------------------------


def test_python_task_over_its_timeout_fails_quickly() -> None:
    with DAG("timeout_py", start_date=LOGICAL) as dag:

        @task(execution_timeout=timedelta(seconds=0.5))
        def sleepy() -> str:
            time.sleep(30)
            return "woke up"

        sleepy()

    started = time.monotonic()
    run = dag.test(LOGICAL)
    elapsed = time.monotonic() - started

    ti = run.get_task_instance("sleepy")
    assert elapsed < 5
    assert ti.state == "failed"
    assert "timed out" in ti.log
    assert ti.xcom_pull() is None
    assert run.state == "failed"


def test_a_task_catching_exception_cannot_swallow_its_timeout() -> None:
    # Airflow's AirflowTaskTimeout is a BaseException so that ordinary ``except Exception``
    # error handling inside a task does not turn a timeout into a success.
    swallowed: list[str] = []
    with DAG("timeout_swallow", start_date=LOGICAL) as dag:

        @task(execution_timeout=timedelta(seconds=0.3))
        def stubborn() -> str:
            for _ in range(3):
                try:
                    time.sleep(0.4)
                except Exception as exc:
                    swallowed.append(type(exc).__name__)
            return "finished anyway"

        stubborn()

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("stubborn")
    assert swallowed == []
    assert ti.state == "failed"
    assert "timed out" in ti.log


def test_timeout_counts_as_a_failure_and_is_retried() -> None:
    tries: list[int] = []
    with DAG("timeout_retry", start_date=LOGICAL) as dag:

        @task(execution_timeout=timedelta(seconds=0.2), retries=1, retry_delay=timedelta(0))
        def slow_then_fast(ti) -> str:
            tries.append(ti.try_number)
            if ti.try_number == 1:
                time.sleep(30)
            return "fast"

        slow_then_fast()

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("slow_then_fast")
    assert tries == [1, 2]
    assert ti.state == "success"
    assert ti.try_number == 2
    assert "timed out" in ti.log


def test_task_under_its_timeout_succeeds() -> None:
    with DAG("timeout_ok", start_date=LOGICAL) as dag:
        PythonOperator(task_id="quick", python_callable=lambda: "quick",
                       execution_timeout=timedelta(seconds=5))

    run = dag.test(LOGICAL)

    assert run.get_task_instance("quick").state == "success"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie nobody reaped yet is gone for our purposes
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_bash_task_over_its_timeout_is_killed(tmp_path: Path) -> None:
    bash_pid, sleep_pid = tmp_path / "bash.pid", tmp_path / "sleep.pid"
    with DAG("timeout_bash", start_date=LOGICAL) as dag:
        BashOperator(
            task_id="sleeper",
            bash_command=f"sleep 30 & echo $! > {sleep_pid}; echo $$ > {bash_pid}; wait",
            execution_timeout=timedelta(seconds=1),
        )

    started = time.monotonic()
    run = dag.test(LOGICAL)
    elapsed = time.monotonic() - started

    ti = run.get_task_instance("sleeper")
    assert ti.state == "failed"
    assert "timed out" in ti.log
    assert elapsed < 10
    pids = [int(bash_pid.read_text()), int(sleep_pid.read_text())]
    deadline = time.monotonic() + 3
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        assert not _alive(pid), f"process {pid} survived the timeout"
