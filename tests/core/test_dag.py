"""Defining a DAG: ``with DAG``, ``dag=``, ``@dag``, default_args, schedule and dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlpipe import DAG, Param, dag, task
from mlpipe.core.xcom_arg import DagParam
from mlpipe.errors import DagDefinitionError
from mlpipe.operators import BashOperator, EmptyOperator


def test_tasks_created_inside_with_block_join_the_dag() -> None:
    with DAG("etl") as etl:
        extract = EmptyOperator(task_id="extract")
        load = EmptyOperator(task_id="load")

    assert etl.task_ids == ["extract", "load"]
    assert extract.dag is etl
    assert etl.get_task("load") is load


def test_tasks_created_after_with_block_belong_to_no_dag() -> None:
    with DAG("etl") as etl:
        EmptyOperator(task_id="inside")
    outside = EmptyOperator(task_id="outside")

    assert outside.dag is None
    assert etl.task_ids == ["inside"]


def test_dag_argument_attaches_task_without_context_manager() -> None:
    etl = DAG("etl")

    load = BashOperator(task_id="load", bash_command="echo hi", dag=etl)

    assert load.dag is etl
    assert etl.task_ids == ["load"]


def test_dag_argument_wins_over_surrounding_with_block() -> None:
    target = DAG("target")
    with DAG("surrounding") as surrounding:
        moved = EmptyOperator(task_id="moved", dag=target)

    assert moved.dag is target
    assert target.task_ids == ["moved"]
    assert surrounding.task_ids == []


def test_nested_with_blocks_use_the_innermost_dag() -> None:
    with DAG("outer") as outer:
        with DAG("inner") as inner:
            EmptyOperator(task_id="deep")
        EmptyOperator(task_id="shallow")

    assert inner.task_ids == ["deep"]
    assert outer.task_ids == ["shallow"]


def test_default_args_apply_to_every_task() -> None:
    defaults = {"retries": 3, "pool": "gpu", "retry_delay": timedelta(seconds=7)}
    with DAG("etl", default_args=defaults):
        classic = EmptyOperator(task_id="classic")

        @task
        def flow() -> None:
            return None

        decorated = flow().operator

    for op in (classic, decorated):
        assert (op.retries, op.pool, op.retry_delay) == (3, "gpu", timedelta(seconds=7))


def test_task_argument_overrides_default_args() -> None:
    with DAG("etl", default_args={"retries": 3, "pool": "gpu"}):
        classic = EmptyOperator(task_id="classic", retries=0)

        @task(retries=5)
        def flow() -> None:
            return None

        decorated = flow().operator

    assert (classic.retries, classic.pool) == (0, "gpu")
    assert (decorated.retries, decorated.pool) == (5, "gpu")


def test_default_args_apply_with_dag_argument() -> None:
    etl = DAG("etl", default_args={"retries": 2})

    op = EmptyOperator(task_id="op", dag=etl)

    assert op.retries == 2


def test_default_args_an_operator_does_not_take_are_ignored() -> None:
    with DAG("etl", default_args={"bash_command": "echo default", "retries": 1}):
        empty = EmptyOperator(task_id="empty")
        bash = BashOperator(task_id="bash")

    assert empty.retries == 1
    assert bash.bash_command == "echo default"


def test_schedule_interval_is_an_alias_of_schedule() -> None:
    assert DAG("nightly", schedule_interval="@daily").schedule == "@daily"
    assert DAG("hourly", schedule="@hourly").schedule == "@hourly"
    assert DAG("manual").schedule is None


def test_schedule_and_schedule_interval_together_are_rejected() -> None:
    with pytest.raises(DagDefinitionError, match=r"'nightly'.*schedule or schedule_interval"):
        DAG("nightly", schedule="@daily", schedule_interval="@daily")


def test_end_date_before_start_date_is_rejected() -> None:
    with pytest.raises(DagDefinitionError, match=r"'window'.*end_date 2024-01-01.*start_date"):
        DAG("window", start_date=datetime(2024, 2, 1), end_date=datetime(2024, 1, 1))


def test_naive_start_and_end_dates_become_utc() -> None:
    window = DAG("window", start_date=datetime(2024, 1, 1), end_date=datetime(2024, 3, 1, 6))

    assert window.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert window.end_date == datetime(2024, 3, 1, 6, tzinfo=UTC)
    assert window.start_date.utcoffset() == timedelta(0)


def test_aware_start_date_keeps_its_timezone() -> None:
    berlin_winter = timezone(timedelta(hours=1))

    window = DAG("window", start_date=datetime(2024, 1, 1, tzinfo=berlin_winter))

    assert window.start_date is not None
    assert window.start_date.utcoffset() == timedelta(hours=1)
    assert window.start_date == datetime(2023, 12, 31, 23, tzinfo=UTC)


def test_start_date_that_is_not_a_datetime_is_rejected() -> None:
    with pytest.raises(DagDefinitionError, match=r"expected a datetime.*'2024-01-01'"):
        DAG("window", start_date="2024-01-01")  # type: ignore[arg-type]


def test_dag_keeps_its_settings() -> None:
    etl = DAG(
        "etl", catchup=True, max_active_runs=2, max_active_tasks=4, tags=("ml", "nightly"),
        description="nightly retraining", dagrun_timeout=timedelta(hours=1),
        template_searchpath="/srv/sql",
    )

    assert etl.catchup is True
    assert (etl.max_active_runs, etl.max_active_tasks) == (2, 4)
    assert etl.tags == ["ml", "nightly"]
    assert etl.description == "nightly retraining"
    assert etl.dagrun_timeout == timedelta(hours=1)
    assert etl.template_searchpath == ["/srv/sql"]


def test_at_dag_returns_a_dag_named_after_the_function() -> None:
    @dag(schedule="@daily", start_date=datetime(2024, 1, 1))
    def nightly_training() -> None:
        EmptyOperator(task_id="train")

    built = nightly_training()

    assert isinstance(built, DAG)
    assert built.dag_id == "nightly_training"
    assert built.schedule == "@daily"
    assert built.task_ids == ["train"]


def test_at_dag_without_parentheses() -> None:
    @dag
    def bare() -> None:
        EmptyOperator(task_id="only")

    assert bare().dag_id == "bare"


def test_at_dag_takes_an_explicit_dag_id() -> None:
    @dag(dag_id="renamed")
    def original() -> None:
        return None

    assert original().dag_id == "renamed"


def test_at_dag_function_arguments_become_params() -> None:
    @dag
    def training(epochs: int = 3, lr: float = 0.1) -> None:
        return None

    assert training().params == {"epochs": 3, "lr": 0.1}
    assert training(epochs=10).params == {"epochs": 10, "lr": 0.1}


def test_at_dag_arguments_are_run_time_references_inside_the_function() -> None:
    @dag
    def training(epochs: int = 3) -> None:
        @task
        def fit(n: int) -> int:
            return n

        fit(epochs)

    fit_task = training().get_task("fit")

    (reference,) = fit_task.op_args
    assert isinstance(reference, DagParam)
    assert (reference.name, reference.default) == ("epochs", 3)


def test_at_dag_argument_without_default_is_rejected() -> None:
    @dag
    def training(epochs: int) -> None:
        return None

    with pytest.raises(DagDefinitionError, match=r"'training'.*default.*'epochs'"):
        training()


def test_at_dag_explicit_param_wins_over_function_default() -> None:
    @dag(params={"epochs": Param(7)})
    def training(epochs: int = 3) -> None:
        return None

    param = training().params["epochs"]

    assert isinstance(param, Param)
    assert param.value == 7


def test_calling_at_dag_twice_gives_independent_dags() -> None:
    @dag
    def pipeline() -> None:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

    first = pipeline()
    second = pipeline()
    first.get_task("b") >> EmptyOperator(task_id="extra", dag=first)

    assert first is not second
    assert first.get_task("a") is not second.get_task("a")
    assert first.task_ids == ["a", "b", "extra"]
    assert second.task_ids == ["a", "b"]
    assert second.get_task("b").downstream_task_ids == set()
