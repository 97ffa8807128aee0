"""Errors raised while a DAG is defined; each names the offending task, DAG or argument."""

from __future__ import annotations

import re

import pytest

from mlpipe import DAG, TaskGroup, task
from mlpipe.errors import (
    CycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    InvalidOperatorArgumentError,
    InvalidTaskIdError,
    InvalidTriggerRuleError,
    MappingError,
    MlpipeError,
    ParamValidationError,
    TaskAlreadyInDagError,
    TaskOutsideDagError,
)
from mlpipe.operators import BashOperator, EmptyOperator, PythonOperator


def noop() -> None:
    return None


def test_definition_errors_share_one_root() -> None:
    for error in (
        CycleError, DuplicateTaskIdError, InvalidTaskIdError, InvalidTriggerRuleError,
        InvalidOperatorArgumentError, MappingError, TaskAlreadyInDagError,
        TaskOutsideDagError, ParamValidationError,
    ):
        assert issubclass(error, DagDefinitionError)
    assert issubclass(DagDefinitionError, MlpipeError)


def test_duplicate_task_id_names_the_task_and_dag() -> None:
    with DAG("etl"):
        EmptyOperator(task_id="load")
        with pytest.raises(
            DuplicateTaskIdError, match=r"DAG 'etl' already has a task 'load'"
        ) as caught:
            EmptyOperator(task_id="load")

    assert (caught.value.dag_id, caught.value.task_id) == ("etl", "load")


def test_duplicate_task_id_with_dag_argument() -> None:
    etl = DAG("etl")
    EmptyOperator(task_id="load", dag=etl)

    with pytest.raises(DuplicateTaskIdError, match=r"'load'"):
        BashOperator(task_id="load", bash_command="echo", dag=etl)
    assert len(etl.tasks) == 1


def test_duplicate_id_from_task_override() -> None:
    @task
    def load() -> None:
        return None

    with DAG("etl"):
        load.override(task_id="same")()
        with pytest.raises(DuplicateTaskIdError, match=r"'same'.*override"):
            load.override(task_id="same")()


@pytest.mark.parametrize(
    "bad_id",
    ["my task", "a/b", "caf\u00e9", "tab\there", "", "x" * 251, "trailing_newline\n"],
    ids=["space", "slash", "non-ascii", "tab", "empty", "too-long", "trailing-newline"],
)
def test_task_id_with_illegal_characters_is_rejected(bad_id: str) -> None:
    with DAG("d") as built, pytest.raises(InvalidTaskIdError, match=r"invalid task_id") as caught:
        EmptyOperator(task_id=bad_id)

    assert caught.value.value == bad_id
    assert repr(bad_id) in str(caught.value)
    assert built.task_ids == []


@pytest.mark.parametrize("good_id", ["a", "train-model_v2", "eu.west", "x" * 250, "0"])
def test_task_id_with_allowed_characters_is_accepted(good_id: str) -> None:
    with DAG("d") as built:
        EmptyOperator(task_id=good_id)

    assert built.task_ids == [good_id]


def test_task_id_that_is_not_a_string_is_rejected() -> None:
    with DAG("d"), pytest.raises(InvalidTaskIdError, match=r"invalid task_id 7"):
        EmptyOperator(task_id=7)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_id", ["my dag", "a/b", "d\u00e4g", "nightly\n"])
def test_dag_id_with_illegal_characters_is_rejected(bad_id: str) -> None:
    with pytest.raises(InvalidTaskIdError, match=re.escape(f"invalid dag_id {bad_id!r}")):
        DAG(bad_id)


def test_at_task_with_illegal_task_id_is_rejected() -> None:
    @task(task_id="load/all")
    def load() -> None:
        return None

    with DAG("d"), pytest.raises(InvalidTaskIdError, match=r"'load/all'"):
        load()


def test_unknown_operator_argument_is_named() -> None:
    with DAG("d"), pytest.raises(
        InvalidOperatorArgumentError, match=r"PythonOperator\(task_id='t'\).*\['foo'\]"
    ) as caught:
        PythonOperator(task_id="t", python_callable=noop, foo=1)

    assert caught.value.names == ["foo"]
    assert caught.value.task_id == "t"


def test_unknown_operator_argument_lists_valid_ones_and_suggests() -> None:
    with DAG("d"), pytest.raises(
        InvalidOperatorArgumentError, match=r"valid: .*'retries'.*did you mean 'retries'"
    ):
        EmptyOperator(task_id="t", retrys=2)


def test_unknown_argument_to_an_operator_with_kwargs_is_still_named() -> None:
    with DAG("d"), pytest.raises(InvalidOperatorArgumentError, match=r"BashOperator.*\['colour'\]"):
        BashOperator(task_id="b", bash_command="echo", colour="red")


def test_unknown_argument_in_at_task_options_is_named() -> None:
    @task(colour="red")
    def paint() -> None:
        return None

    with DAG("d"), pytest.raises(InvalidOperatorArgumentError, match=r"'paint'.*\['colour'\]"):
        paint()


def test_negative_retries_is_rejected() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match=r"'t'.*retries.*-1"):
        EmptyOperator(task_id="t", retries=-1)


def test_non_callable_python_callable_is_rejected() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match=r"'t'.*python_callable.*str"):
        PythonOperator(task_id="t", python_callable="noop")  # type: ignore[arg-type]


def test_task_added_to_a_second_dag_is_rejected() -> None:
    first = DAG("first")
    second = DAG("second")
    load = EmptyOperator(task_id="load", dag=first)

    with pytest.raises(
        TaskAlreadyInDagError, match=r"'load' already belongs to DAG 'first'.*DAG 'second'"
    ):
        second.add_task(load)
    with pytest.raises(TaskAlreadyInDagError, match=r"'load'.*'first'.*'second'"):
        load.dag = second

    assert load.dag is first
    assert second.task_ids == []


def test_dependency_between_tasks_of_two_dags_is_rejected() -> None:
    with DAG("first"):
        upstream = EmptyOperator(task_id="up")
    with DAG("second"):
        downstream = EmptyOperator(task_id="down")

    with pytest.raises(
        DagDefinitionError, match=r"'up' \(DAG 'first'\).*'down' \(DAG 'second'\)"
    ):
        upstream >> downstream
    assert upstream.downstream_task_ids == set()
    assert downstream.upstream_task_ids == set()


def test_xcom_arg_from_another_dag_is_rejected() -> None:
    @task
    def produce() -> int:
        return 1

    @task
    def consume(value: int) -> int:
        return value

    with DAG("first"):
        produced = produce()
    with DAG("second"), pytest.raises(DagDefinitionError, match=r"'produce'.*'consume'"):
        consume(produced)


def test_dag_less_task_joins_the_dag_of_its_dependency() -> None:
    loose = EmptyOperator(task_id="loose")
    with DAG("etl") as etl:
        anchored = EmptyOperator(task_id="anchored")

    loose >> anchored

    assert loose.dag is etl
    assert sorted(etl.task_ids) == ["anchored", "loose"]


def test_task_called_outside_a_dag_is_rejected() -> None:
    @task
    def orphan() -> None:
        return None

    with pytest.raises(TaskOutsideDagError, match=r"@task 'orphan' was called outside a DAG"):
        orphan()


def test_task_group_outside_a_dag_is_rejected() -> None:
    with pytest.raises(TaskOutsideDagError, match=r"TaskGroup 'orphans'"):
        TaskGroup("orphans")


@pytest.mark.parametrize("value", [5, "abc"])
def test_expanding_a_non_list_literal_names_the_argument(value: object) -> None:
    @task
    def square(x: int) -> int:
        return x * x

    with DAG("d"), pytest.raises(MappingError, match=f"'square'.*'x'.*{value!r}"):
        square.expand(x=value)
