"""TaskFlow at definition time: ``@task``, its options, ``.override()``, outputs."""

from __future__ import annotations

from typing import Any

import pytest

from mlpipe import DAG, XComArg, task
from mlpipe.errors import DagDefinitionError, TaskOutsideDagError
from mlpipe.operators import (
    BashOperator,
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)


@task
def featurize(rows: int) -> int:
    return rows


def test_calling_a_task_adds_a_python_task_named_after_the_function() -> None:
    with DAG("d") as built:
        out = featurize(3)

    op = built.get_task("featurize")
    assert isinstance(out, XComArg)
    assert out.operator is op
    assert out.key == "return_value"
    assert isinstance(op, PythonOperator)
    assert op.op_args == [3]
    assert op.python_callable is featurize.function


def test_keyword_arguments_go_to_op_kwargs() -> None:
    with DAG("d") as built:
        featurize(rows=3)

    assert built.get_task("featurize").op_kwargs == {"rows": 3}


def test_task_options_in_the_decorator() -> None:
    @task(task_id="train_model", retries=2)
    def train() -> None:
        return None

    with DAG("d") as built:
        train()

    op = built.get_task("train_model")
    assert op.retries == 2
    assert built.task_ids == ["train_model"]


def test_override_changes_task_id_and_options() -> None:
    with DAG("d") as built:
        featurize.override(task_id="featurize_eu", retries=4)(1)
        featurize(2)

    assert built.task_ids == ["featurize_eu", "featurize"]
    assert built.get_task("featurize_eu").retries == 4
    assert built.get_task("featurize").retries == 0


def test_calling_a_task_twice_gives_suffixed_ids() -> None:
    with DAG("d") as built:
        first = featurize(1)
        second = featurize(2)
        third = featurize(3)

    assert [x.operator.task_id for x in (first, second, third)] == [
        "featurize", "featurize__1", "featurize__2",
    ]
    assert built.task_ids == ["featurize", "featurize__1", "featurize__2"]


def test_same_task_in_two_dags_gets_the_plain_id_in_each() -> None:
    with DAG("one") as one:
        featurize(1)
    with DAG("two") as two:
        featurize(2)

    assert one.task_ids == two.task_ids == ["featurize"]
    assert one.get_task("featurize") is not two.get_task("featurize")


def test_task_with_dag_argument_outside_a_with_block() -> None:
    built = DAG("d")

    featurize.override(dag=built)(1)

    assert built.task_ids == ["featurize"]


def test_task_called_with_wrong_arguments_is_rejected() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match=r"'featurize'.*'colour'"):
        featurize(colour=1)


def test_task_called_outside_a_dag_is_rejected() -> None:
    with pytest.raises(TaskOutsideDagError, match=r"@task 'featurize'.*outside a DAG"):
        featurize(1)


def test_decorating_something_not_callable_is_rejected() -> None:
    with pytest.raises(DagDefinitionError, match=r"needs a function.*42"):
        task(42)  # type: ignore[arg-type]


def test_multiple_outputs_inferred_from_a_dict_annotation() -> None:
    @task
    def metrics() -> dict[str, int]:
        return {"accuracy": 1}

    @task
    def score() -> int:
        return 1

    with DAG("d"):
        assert metrics().operator.multiple_outputs is True
        assert score().operator.multiple_outputs is False


def test_explicit_multiple_outputs_wins_over_the_annotation() -> None:
    @task(multiple_outputs=False)
    def metrics() -> dict[str, int]:
        return {"accuracy": 1}

    @task(multiple_outputs=True)
    def untyped() -> Any:
        return {"accuracy": 1}

    with DAG("d"):
        assert metrics().operator.multiple_outputs is False
        assert untyped().operator.multiple_outputs is True


def test_indexing_an_output_selects_an_xcom_key() -> None:
    @task
    def metrics() -> dict[str, int]:
        return {"accuracy": 1}

    @task
    def report(accuracy: int) -> None:
        return None

    with DAG("d") as built:
        out = metrics()
        accuracy = out["accuracy"]
        report(accuracy)

    assert isinstance(accuracy, XComArg)
    assert accuracy.key == "accuracy"
    assert accuracy.operator is out.operator
    assert built.get_task("report").upstream_task_ids == {"metrics"}


def test_xcom_arg_cannot_be_iterated_while_defining() -> None:
    with DAG("d"):
        out = featurize(1)
        with pytest.raises(TypeError, match=r"'featurize'.*expand"):
            list(out)


def test_task_flavours_build_the_matching_operator() -> None:
    @task.branch
    def choose() -> str:
        return "a"

    @task.short_circuit
    def gate() -> bool:
        return True

    @task.bash
    def command() -> str:
        return "echo hi"

    @task.python
    def plain() -> None:
        return None

    with DAG("d") as built:
        choose()
        gate()
        command()
        plain()

    assert isinstance(built.get_task("choose"), BranchPythonOperator)
    assert isinstance(built.get_task("gate"), ShortCircuitOperator)
    assert isinstance(built.get_task("command"), BashOperator)
    assert type(built.get_task("plain")) is PythonOperator
