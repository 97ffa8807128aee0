"""``@task``: values flowing between tasks, multiple outputs, overrides, context, failures."""

from __future__ import annotations

from typing import Any

from mlpipe import DAG, dag, task

LOGICAL_DATE = "2024-03-05"


def returned(run, task_id: str, map_index: int = -1) -> Any:
    ti = run.get_task_instance(task_id, map_index)
    assert ti is not None, f"no task instance {task_id}[{map_index}]"
    assert ti.state == "success", ti.log
    return ti.xcom_pull(key="return_value")


def test_values_flow_between_tasks():
    @task
    def load_rows():
        return [3, 1, 2]

    @task
    def scale(rows, factor):
        return [r * factor for r in rows]

    @task
    def total(rows):
        return sum(rows)

    @dag
    def flow():
        total(scale(load_rows(), factor=10))

    run = flow().test(logical_date=LOGICAL_DATE)

    assert run.state == "success"
    assert [ti.task_id for ti in run.task_instances] == ["load_rows", "scale", "total"]
    assert returned(run, "scale") == [30, 10, 20]
    assert returned(run, "total") == 60


def test_calling_a_task_twice_gives_distinct_task_ids():
    @task
    def add(a, b):
        return a + b

    with DAG("twice") as twice:
        add(add(1, 2), 10)

    run = twice.test(logical_date=LOGICAL_DATE)

    assert returned(run, "add") == 3
    assert returned(run, "add__1") == 13


def test_multiple_outputs_pushes_each_key():
    @task(multiple_outputs=True)
    def split():
        return {"train": 80, "test": 20}

    with DAG("multi") as multi:
        split()

    run = multi.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("split")
    assert ti.xcom_pull(key="train") == 80
    assert ti.xcom_pull(key="test") == 20
    assert ti.xcom_pull(key="return_value") == {"train": 80, "test": 20}


def test_multiple_outputs_is_inferred_from_a_dict_return_annotation():
    @task
    def counts() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @task
    def plain() -> int:
        return 5

    @task
    def untyped():
        return {"a": 1}

    with DAG("inferred") as inferred:
        counts()
        plain()
        untyped()

    run = inferred.test(logical_date=LOGICAL_DATE)

    assert run.get_task_instance("counts").xcom_pull(key="a") == 1
    assert run.get_task_instance("counts").xcom_pull(key="b") == 2
    assert returned(run, "plain") == 5
    assert run.get_task_instance("untyped").xcom_pull(key="a") is None
    assert returned(run, "untyped") == {"a": 1}


def test_indexing_an_output_passes_one_key():
    @task(multiple_outputs=True)
    def stats():
        return {"a": 7, "b": 9}

    @task
    def show(value):
        return value

    with DAG("one_key") as one_key:
        out = stats()
        show.override(task_id="show_a")(out["a"])
        show.override(task_id="show_b")(out["b"])

    run = one_key.test(logical_date=LOGICAL_DATE)

    assert returned(run, "show_a") == 7
    assert returned(run, "show_b") == 9
    assert one_key.get_task("show_a").upstream_task_ids == {"stats"}


def test_multiple_outputs_with_a_non_dict_return_fails():
    @task(multiple_outputs=True)
    def not_a_dict():
        return [1, 2]

    with DAG("bad_multi") as bad_multi:
        not_a_dict()

    run = bad_multi.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("not_a_dict")
    assert ti.state == "failed"
    assert "multiple_outputs" in ti.log


def test_override_sets_task_id_and_retries():
    calls: list[int] = []

    @task
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("transient outage")
        return "recovered"

    with DAG("override") as override_dag:
        flaky.override(task_id="x", retries=1)()

    run = override_dag.test(logical_date=LOGICAL_DATE, skip_retry_delays=True)

    assert override_dag.task_ids == ["x"]
    ti = run.get_task_instance("x")
    assert ti.state == "success"
    assert ti.try_number == 2
    assert "ConnectionError: transient outage" in ti.log
    assert returned(run, "x") == "recovered"
    assert len(calls) == 2


def test_context_parameters_in_task_functions():
    @task
    def with_ti(ti=None):
        return ti.task_id

    @task
    def with_context(value, **context):
        return [value, context["ds"], context["params"]["size"], context["ti"].task_id]

    @task
    def with_named(ds=None, params=None, logical_date=None, dag_run=None):
        return [ds, params["size"], logical_date.year, dag_run.run_id]

    with DAG("ctx", params={"size": 1}) as ctx_dag:
        with_context(with_ti())
        with_named()

    run = ctx_dag.test(logical_date=LOGICAL_DATE, conf={"size": 4})

    assert returned(run, "with_ti") == "with_ti"
    assert returned(run, "with_context") == ["with_ti", "2024-03-05", 4, "with_context"]
    assert returned(run, "with_named") == ["2024-03-05", 4, 2024, run.run_id]


def test_exception_in_a_task_fails_it_and_its_downstream():
    @task
    def explode():
        raise RuntimeError("model diverged")

    @task
    def after(value):
        return value

    with DAG("boom") as boom:
        after(explode())

    run = boom.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("explode")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert "Traceback (most recent call last)" in ti.log
    assert "RuntimeError: model diverged" in ti.log
    assert run.get_task_instance("after").state == "upstream_failed"


def test_dag_function_arguments_become_params():
    @task
    def echo(value):
        return value

    @dag(dag_id="with_params")
    def with_params(threshold: float = 0.5):
        echo(threshold)

    built = with_params()
    default_run = built.test(logical_date=LOGICAL_DATE)
    conf_run = built.test(logical_date=LOGICAL_DATE, conf={"threshold": 0.9})

    assert returned(default_run, "echo") == 0.5
    assert returned(conf_run, "echo") == 0.9
