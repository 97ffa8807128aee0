"""Port of Airflow's mapped task group example: a group expanded over a list, then reduced."""

from __future__ import annotations

from mlpipe import DAG, task, task_group


@task
def mult_two(x):
    return x * 2


@task
def add_one(x):
    return x + 1


@task_group
def tg(x):
    return add_one(mult_two(x))


@task
def total(values):
    return {"values": values, "sum": sum(values)}


@task
def numbers():
    return [1, 2, 3]


def assert_group_ran_per_value(run):
    assert run.state == "success"
    for task_id, expected in (("tg.mult_two", [2, 4, 6]), ("tg.add_one", [3, 5, 7])):
        tis = [ti for ti in run.task_instances if ti.task_id == task_id]
        assert [ti.map_index for ti in tis] == [0, 1, 2]
        assert [ti.xcom_pull(key="return_value") for ti in tis] == expected
    assert run.get_task_instance("total").xcom_pull(key="return_value") == {
        "values": [3, 5, 7], "sum": 15}


def test_mapped_task_group_over_a_literal_list():
    with DAG("mapped_task_group") as built:
        total(tg.expand(x=[1, 2, 3]))

    assert_group_ran_per_value(built.test(logical_date="2024-03-05"))


def test_mapped_task_group_over_an_upstream_output():
    with DAG("mapped_task_group_upstream") as built:
        total(tg.expand(x=numbers()))

    assert_group_ran_per_value(built.test(logical_date="2024-03-05"))
