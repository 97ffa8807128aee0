"""dag.test(): XCom push/pull, value types, size limit and multiple_outputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlpipe import DAG, task
from mlpipe.operators import PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def test_push_and_pull_with_keys_between_tasks() -> None:
    with DAG("xcom_keys", start_date=LOGICAL) as dag:

        def producer(ti) -> str:
            ti.xcom_push(key="rows", value=120)
            ti.xcom_push(key="meta", value={"source": "s3", "cols": ["a", "b"]})
            return "produced"

        def consumer(ti) -> dict[str, Any]:
            return {
                "rows": ti.xcom_pull(task_ids="producer", key="rows"),
                "meta": ti.xcom_pull(task_ids="producer", key="meta"),
                "ret": ti.xcom_pull(task_ids="producer"),
                "missing": ti.xcom_pull(task_ids="producer", key="nope"),
            }

        p = PythonOperator(task_id="producer", python_callable=producer)
        c = PythonOperator(task_id="consumer", python_callable=consumer)
        p >> c

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert run.get_task_instance("consumer").xcom_pull() == {
        "rows": 120, "meta": {"source": "s3", "cols": ["a", "b"]}, "ret": "produced",
        "missing": None,
    }
    assert run.get_task_instance("producer").xcom_pull(key="rows") == 120


def test_pull_from_a_list_of_task_ids_returns_a_list_in_that_order() -> None:
    with DAG("xcom_list", start_date=LOGICAL) as dag:
        a = PythonOperator(task_id="a", python_callable=lambda: "from a")
        b = PythonOperator(task_id="b", python_callable=lambda: "from b")
        c = PythonOperator(task_id="c",
                           python_callable=lambda ti: ti.xcom_pull(task_ids=["b", "a"]))
        [a, b] >> c

    run = dag.test(LOGICAL)

    assert run.get_task_instance("c").xcom_pull() == ["from b", "from a"]


def test_taskflow_values_pass_between_tasks() -> None:
    with DAG("xcom_flow", start_date=LOGICAL) as dag:

        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        @task
        def total(values: list[int], factor: int) -> int:
            return sum(values) * factor

        total(extract(), factor=10)

    run = dag.test(LOGICAL)

    assert run.get_task_instance("total").xcom_pull() == 60


def test_operator_output_is_an_xcomarg_for_python_operators() -> None:
    with DAG("xcom_output", start_date=LOGICAL) as dag:
        src = PythonOperator(task_id="src", python_callable=lambda: {"n": 4})
        PythonOperator(task_id="dst", python_callable=lambda d: d["n"] + 1,
                       op_args=[src.output])

    run = dag.test(LOGICAL)

    assert run.get_task_instance("dst").state == "success"
    assert run.get_task_instance("dst").xcom_pull() == 5


def test_datetime_date_timedelta_and_path_round_trip() -> None:
    value = {
        "when": datetime(2024, 2, 29, 13, 45, 7, 123456, tzinfo=UTC),
        "day": date(2024, 2, 29),
        "span": timedelta(days=1, seconds=30, microseconds=5),
        "where": Path("/data/images/train"),
        "nested": [date(2023, 1, 1), {"inner": timedelta(minutes=2)}],
    }
    received: list[Any] = []
    with DAG("xcom_types", start_date=LOGICAL) as dag:

        @task
        def produce() -> dict[str, Any]:
            return value

        @task
        def consume(v: dict[str, Any]) -> None:
            received.append(v)

        consume(produce())

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert received == [value]
    got = received[0]
    assert type(got["when"]) is datetime and got["when"].tzinfo is not None
    assert type(got["day"]) is date
    assert isinstance(got["where"], Path)


@pytest.mark.parametrize("bad", [{1, 2}, object(), b"raw bytes"], ids=["set", "object", "bytes"])
def test_a_value_that_is_not_json_fails_the_task(bad: Any) -> None:
    with DAG("xcom_bad", start_date=LOGICAL) as dag:
        src = PythonOperator(task_id="src", python_callable=lambda: bad)
        dst = PythonOperator(task_id="dst", python_callable=lambda: None)
        src >> dst

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("src")
    assert ti.state == "failed"
    assert "not JSON-serialisable" in ti.log
    assert run.get_task_instance("dst").state == "upstream_failed"


def test_a_pushed_value_that_is_not_json_fails_the_task() -> None:
    with DAG("xcom_bad_push", start_date=LOGICAL) as dag:
        PythonOperator(task_id="src",
                       python_callable=lambda ti: ti.xcom_push(key="k", value={1, 2}))

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("src")
    assert ti.state == "failed"
    assert "not JSON-serialisable" in ti.log


def test_a_value_over_the_size_limit_fails_and_says_to_write_an_artifact(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_XCOM_MAX_BYTES", "200")
    with DAG("xcom_big", start_date=LOGICAL) as dag:
        PythonOperator(task_id="small", python_callable=lambda: "x" * 50)
        PythonOperator(task_id="big", python_callable=lambda: "x" * 5000)

    run = dag.test(LOGICAL)

    big = run.get_task_instance("big")
    assert run.get_task_instance("small").state == "success"
    assert big.state == "failed"
    assert "artifact" in big.log
    assert "200" in big.log
    assert big.xcom_pull() is None


def test_default_size_limit_allows_a_moderate_value() -> None:
    with DAG("xcom_default_limit", start_date=LOGICAL) as dag:
        PythonOperator(task_id="ok", python_callable=lambda: "y" * 40_000)
        PythonOperator(task_id="too_big", python_callable=lambda: "y" * 60_000)

    run = dag.test(LOGICAL)

    assert run.get_task_instance("ok").state == "success"
    assert run.get_task_instance("too_big").state == "failed"


def test_multiple_outputs_pushes_one_key_per_entry_and_return_value() -> None:
    with DAG("xcom_multi", start_date=LOGICAL) as dag:

        @task(multiple_outputs=True)
        def split() -> dict[str, Any]:
            return {"train": [1, 2], "test": [3]}

        @task
        def sizes(train: list[int], test: list[int]) -> str:
            return f"{len(train)}/{len(test)}"

        parts = split()
        sizes(parts["train"], parts["test"])

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("split")
    assert ti.xcom_pull(key="train") == [1, 2]
    assert ti.xcom_pull(key="test") == [3]
    assert ti.xcom_pull() == {"train": [1, 2], "test": [3]}
    assert run.get_task_instance("sizes").xcom_pull() == "2/1"


def test_dict_return_annotation_infers_multiple_outputs() -> None:
    with DAG("xcom_infer", start_date=LOGICAL) as dag:

        @task
        def stats() -> dict[str, float]:
            return {"mean": 1.5, "std": 0.5}

        stats()

    run = dag.test(LOGICAL)

    assert run.get_task_instance("stats").xcom_pull(key="mean") == 1.5


def test_multiple_outputs_with_a_non_dict_return_fails() -> None:
    with DAG("xcom_multi_bad", start_date=LOGICAL) as dag:

        @task(multiple_outputs=True)
        def split() -> Any:
            return [1, 2, 3]

        split()

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("split")
    assert ti.state == "failed"
    assert "multiple_outputs" in ti.log
    assert "dict" in ti.log


def test_none_return_is_not_pushed_but_downstream_receives_none() -> None:
    # Airflow does not push a None return value; a TaskFlow argument bound to it is None.
    received: list[Any] = []
    with DAG("xcom_none", start_date=LOGICAL) as dag:

        @task
        def side_effect_only() -> None:
            print("did something")

        @task
        def after(value: Any) -> None:
            received.append(value)

        after(side_effect_only())

    run = dag.test(LOGICAL)

    assert run.get_task_instance("side_effect_only").xcom_pull() is None
    assert run.get_task_instance("after").state == "success"
    assert received == [None]


def test_do_xcom_push_false_pushes_nothing() -> None:
    with DAG("xcom_off", start_date=LOGICAL) as dag:
        PythonOperator(task_id="quiet", python_callable=lambda: {"big": "thing"},
                       do_xcom_push=False)

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("quiet")
    assert ti.state == "success"
    assert ti.xcom_pull() is None
