"""Port of Airflow's TaskFlow ETL tutorial: extract -> transform (two outputs) -> load."""

from __future__ import annotations

import json

import pytest

from mlpipe import dag, task

ORDERS = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'


@dag(dag_id="taskflow_etl", tags=["example"])
def taskflow_etl():
    @task
    def extract() -> dict[str, float]:
        return json.loads(ORDERS)

    @task(multiple_outputs=True)
    def transform(order_data: dict):
        return {"total": sum(order_data.values()), "count": len(order_data)}

    @task
    def load(total: float):
        print(f"Total order value is: {total:.2f}")
        return total

    summary = transform(extract())
    load(summary["total"])


def test_load_receives_the_total_from_transform():
    built = taskflow_etl()

    run = built.test(logical_date="2024-03-05")

    assert run.state == "success"
    assert built.get_task("load").upstream_task_ids == {"transform"}
    transform_ti = run.get_task_instance("transform")
    assert transform_ti.xcom_pull(key="total") == pytest.approx(1236.70)
    assert transform_ti.xcom_pull(key="count") == 3
    load_ti = run.get_task_instance("load")
    assert load_ti.xcom_pull(key="return_value") == pytest.approx(1236.70)
    assert "Total order value is: 1236.70" in load_ti.log
