"""dag.test(): task callbacks (success, failure, retry) and DAG-level callbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe import DAG, task
from mlpipe.operators import EmptyOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def _boom() -> None:
    raise ValueError("bad input 7")


def test_on_success_callback_gets_ti_and_task() -> None:
    seen: list[dict[str, Any]] = []
    with DAG("cb_success", start_date=LOGICAL) as dag:
        PythonOperator(task_id="ok", python_callable=lambda: 5,
                       on_success_callback=lambda ctx: seen.append(dict(ctx)))

    run = dag.test(LOGICAL)

    assert len(seen) == 1
    ctx = seen[0]
    assert ctx["ti"].task_id == "ok"
    assert ctx["ti"].state == "success"
    assert ctx["ti"].run_id == run.run_id
    assert ctx["ti"].try_number == run.get_task_instance("ok").try_number == 1
    assert ctx["task"].task_id == "ok"
    assert ctx["dag"].dag_id == dag.dag_id
    assert ctx["run_id"] == run.run_id
    assert "exception" not in ctx


def test_on_failure_callback_gets_the_exception() -> None:
    seen: list[dict[str, Any]] = []
    successes: list[str] = []
    with DAG("cb_failure", start_date=LOGICAL) as dag:
        PythonOperator(task_id="bad", python_callable=_boom,
                       on_failure_callback=lambda ctx: seen.append(dict(ctx)),
                       on_success_callback=lambda ctx: successes.append("called"))

    run = dag.test(LOGICAL)

    assert successes == []
    assert len(seen) == 1
    ctx = seen[0]
    assert isinstance(ctx["exception"], ValueError)
    assert "bad input 7" in str(ctx["exception"])
    assert ctx["ti"].task_id == "bad"
    assert ctx["ti"].state == "failed"
    assert ctx["task"].task_id == "bad"
    assert run.state == "failed"


def test_on_retry_callback_runs_once_per_retry_then_failure_callback() -> None:
    calls: list[tuple[str, int, str]] = []
    with DAG("cb_retry", start_date=LOGICAL) as dag:
        PythonOperator(
            task_id="bad", python_callable=_boom, retries=2, retry_delay=timedelta(0),
            on_retry_callback=lambda ctx: calls.append(
                ("retry", ctx["ti"].try_number, type(ctx["exception"]).__name__)),
            on_failure_callback=lambda ctx: calls.append(
                ("failure", ctx["ti"].try_number, type(ctx["exception"]).__name__)),
        )

    dag.test(LOGICAL)

    assert calls == [("retry", 1, "ValueError"), ("retry", 2, "ValueError"),
                     ("failure", 3, "ValueError")]


def test_retry_then_success_calls_retry_then_success_callback() -> None:
    calls: list[str] = []
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")

    with DAG("cb_retry_ok", start_date=LOGICAL) as dag:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=1,
                       retry_delay=timedelta(0),
                       on_retry_callback=lambda ctx: calls.append("retry"),
                       on_success_callback=lambda ctx: calls.append("success"),
                       on_failure_callback=lambda ctx: calls.append("failure"))

    dag.test(LOGICAL)

    assert calls == ["retry", "success"]


def test_a_list_of_callbacks_all_run() -> None:
    calls: list[str] = []
    with DAG("cb_list", start_date=LOGICAL) as dag:
        PythonOperator(task_id="ok", python_callable=lambda: None,
                       on_success_callback=[lambda ctx: calls.append("one"),
                                            lambda ctx: calls.append("two")])

    dag.test(LOGICAL)

    assert calls == ["one", "two"]


def test_a_broken_callback_does_not_change_the_task_state() -> None:
    def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    with DAG("cb_broken", start_date=LOGICAL) as dag:
        ok = PythonOperator(task_id="ok", python_callable=lambda: None,
                            on_success_callback=broken)
        ok >> EmptyOperator(task_id="after")

    run = dag.test(LOGICAL)

    assert run.get_task_instance("ok").state == "success"
    assert run.get_task_instance("after").state == "success"
    assert run.state == "success"


def test_callbacks_from_default_args_and_taskflow() -> None:
    calls: list[str] = []
    with DAG("cb_defaults", start_date=LOGICAL,
             default_args={"on_failure_callback": lambda ctx: calls.append(
                 ctx["ti"].task_id)}) as dag:

        @task
        def fails() -> None:
            raise RuntimeError("no")

        @task(on_success_callback=lambda ctx: calls.append("flow_ok"))
        def works() -> int:
            return 1

        fails()
        works()

    dag.test(LOGICAL)

    assert sorted(calls) == ["fails", "flow_ok"]


def test_dag_on_success_callback_runs_once_on_a_successful_run() -> None:
    seen: list[dict[str, Any]] = []
    failures: list[str] = []
    with DAG("dag_cb_ok", start_date=LOGICAL, on_success_callback=lambda ctx: seen.append(ctx),
             on_failure_callback=lambda ctx: failures.append("called")) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

    run = dag.test(LOGICAL)

    assert failures == []
    assert len(seen) == 1
    assert seen[0]["dag_run"].run_id == run.run_id
    assert seen[0]["dag_run"].state == "success"
    assert seen[0]["dag"].dag_id == dag.dag_id


def test_dag_on_failure_callback_runs_once_on_a_failed_run() -> None:
    seen: list[dict[str, Any]] = []
    successes: list[str] = []
    with DAG("dag_cb_fail", start_date=LOGICAL, on_failure_callback=lambda ctx: seen.append(ctx),
             on_success_callback=lambda ctx: successes.append("called")) as dag:
        PythonOperator(task_id="bad", python_callable=_boom) >> EmptyOperator(task_id="after")

    run = dag.test(LOGICAL)

    assert successes == []
    assert len(seen) == 1
    assert seen[0]["dag_run"].run_id == run.run_id
    assert seen[0]["dag_run"].state == "failed"
    assert seen[0]["reason"] == "task_failure"


def test_a_broken_dag_callback_does_not_raise_from_dag_test() -> None:
    def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("dag callback bug")

    with DAG("dag_cb_broken", start_date=LOGICAL, on_success_callback=broken) as dag:
        EmptyOperator(task_id="a")

    run = dag.test(LOGICAL)

    assert run.state == "success"


def test_upstream_failed_and_skipped_tasks_do_not_run_callbacks() -> None:
    calls: list[str] = []

    def record(ctx: dict[str, Any]) -> None:
        calls.append(ctx["ti"].task_id)

    with DAG("cb_not_run", start_date=LOGICAL) as dag:
        bad = PythonOperator(task_id="bad", python_callable=_boom)
        after = PythonOperator(task_id="after", python_callable=lambda: None,
                               on_failure_callback=record, on_success_callback=record)
        bad >> after

    run = dag.test(LOGICAL)

    assert run.get_task_instance("after").state == "upstream_failed"
    assert calls == []
