"""Port of Airflow's mapping example: a mapped task mapped again, then reduced."""

from __future__ import annotations

from mlpipe import DAG, task


@task
def get_nums():
    return [1, 2, 3]


@task
def times_2(num):
    return num * 2


@task
def add_10(num):
    return num + 10


@task
def sum_all(values):
    return sum(values)


def test_mapping_over_a_mapped_output_then_summing():
    with DAG("second_order_mapping") as built:
        sum_all(add_10.expand(num=times_2.expand(num=get_nums())))

    run = built.test(logical_date="2024-03-05")

    assert run.state == "success"
    for task_id, expected in (("times_2", [2, 4, 6]), ("add_10", [12, 14, 16])):
        tis = [ti for ti in run.task_instances if ti.task_id == task_id]
        assert [ti.map_index for ti in tis] == [0, 1, 2]
        assert [ti.state for ti in tis] == ["success"] * 3
        assert [ti.xcom_pull(key="return_value") for ti in tis] == expected
    assert run.get_task_instance("sum_all").xcom_pull(key="return_value") == 42
