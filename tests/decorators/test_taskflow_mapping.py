"""``@task.expand`` and ``.partial().expand``: one task instance per mapped value."""

from __future__ import annotations

from mlpipe import DAG, task

LOGICAL_DATE = "2024-03-05"


def mapped_values(run, task_id: str) -> list:
    tis = [ti for ti in run.task_instances if ti.task_id == task_id]
    assert [ti.map_index for ti in tis] == list(range(len(tis)))
    assert all(ti.state == "success" for ti in tis), [ti.log for ti in tis]
    return [ti.xcom_pull(key="return_value") for ti in tis]


def test_expand_over_a_literal_list_and_collect_downstream():
    @task
    def square(x):
        return x * x

    @task
    def collect(values):
        return values

    with DAG("expand_literal") as built:
        collect(square.expand(x=[1, 2, 3]))

    run = built.test(logical_date=LOGICAL_DATE)

    assert run.state == "success"
    assert mapped_values(run, "square") == [1, 4, 9]
    assert run.get_task_instance("square") is None
    assert run.get_task_instance("collect").xcom_pull(key="return_value") == [1, 4, 9]


def test_partial_fixes_arguments_and_expand_maps_an_upstream_output():
    @task
    def sizes():
        return [10, 20]

    @task
    def resize(size, mode):
        return f"{mode}:{size}"

    with DAG("expand_upstream") as built:
        resize.partial(mode="crop").expand(size=sizes())

    run = built.test(logical_date=LOGICAL_DATE)

    assert mapped_values(run, "resize") == ["crop:10", "crop:20"]


def test_mapped_instances_see_their_map_index_in_the_context():
    @task
    def which(item, ti=None):
        return [item, ti.map_index]

    with DAG("expand_index") as built:
        which.expand(item=["a", "b", "c"])

    run = built.test(logical_date=LOGICAL_DATE)

    assert mapped_values(run, "which") == [["a", 0], ["b", 1], ["c", 2]]


def test_one_failing_instance_fails_only_itself():
    @task
    def invert(x):
        return 1 / x

    with DAG("expand_fail") as built:
        invert.expand(x=[1, 0, 4])

    run = built.test(logical_date=LOGICAL_DATE)

    states = [run.get_task_instance("invert", i).state for i in range(3)]
    assert states == ["success", "failed", "success"]
    assert "ZeroDivisionError" in run.get_task_instance("invert", 1).log
    assert run.state == "failed"


def test_expanding_over_an_empty_list_skips_the_task():
    @task
    def nothing():
        return []

    @task
    def per_item(x):
        return x

    with DAG("expand_empty") as built:
        per_item.expand(x=nothing())

    run = built.test(logical_date=LOGICAL_DATE)

    assert run.get_task_instance("per_item").state == "skipped"
    assert run.state == "success"
