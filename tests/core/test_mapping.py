"""Defining mapped tasks: ``.expand()``, ``.partial().expand()``, mapped task groups."""

from __future__ import annotations

import pytest

from mlpipe import DAG, TaskGroup, XComArg, task, task_group
from mlpipe.core.mapping import MappedOperator
from mlpipe.errors import (
    DagDefinitionError,
    InvalidOperatorArgumentError,
    MappingError,
    TaskOutsideDagError,
)
from mlpipe.operators import BashOperator, PythonOperator


def double(value: int) -> int:
    return 2 * value


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def numbers() -> list[int]:
    return [1, 2, 3]


def test_expand_over_a_literal_list() -> None:
    with DAG("d") as built:
        out = add.expand(x=[1, 2, 3])

    node = built.get_task("add")
    assert isinstance(out, XComArg)
    assert out.operator is node
    assert node.is_mapped
    assert isinstance(node, MappedOperator)
    assert node.expand_input == {"x": [1, 2, 3]}
    assert node.task_type == "PythonOperator"


def test_partial_fixes_arguments_and_expand_maps_the_rest() -> None:
    with DAG("d") as built:
        add.partial(y=10).expand(x=[1, 2])

    node = built.get_task("add")
    assert isinstance(node, MappedOperator)
    assert node.expand_input == {"x": [1, 2]}
    assert node.partial_kwargs["op_kwargs"] == {"y": 10}


def test_expand_over_an_upstream_output_depends_on_it() -> None:
    with DAG("d") as built:
        add.partial(y=1).expand(x=numbers())

    node = built.get_task("add")
    assert node.upstream_task_ids == {"numbers"}
    assert isinstance(node, MappedOperator)
    assert node.expand_input["x"] == XComArg(built.get_task("numbers"))


def test_expand_over_a_tuple_and_a_dict() -> None:
    with DAG("d") as built:
        add.expand(x=(1, 2))
        add.expand(x={"a": 1, "b": 2})

    from_tuple = built.get_task("add")
    from_dict = built.get_task("add__1")
    assert isinstance(from_tuple, MappedOperator)
    assert isinstance(from_dict, MappedOperator)
    assert from_tuple.expand_input == {"x": [1, 2]}
    assert from_dict.expand_input == {"x": [["a", 1], ["b", 2]]}


def test_expanded_task_keeps_its_operator_arguments() -> None:
    with DAG("d", default_args={"pool": "cpu"}) as built:
        add.override(task_id="adder", retries=2).expand(x=[1])

    node = built.get_task("adder")
    assert (node.retries, node.pool) == (2, "cpu")


def test_python_operator_partial_expand() -> None:
    with DAG("d") as built:
        mapped = PythonOperator.partial(task_id="py", python_callable=double).expand(
            op_args=[[1], [2]]
        )

    assert built.get_task("py") is mapped
    assert isinstance(mapped, MappedOperator)
    assert mapped.is_mapped
    assert mapped.task_type == "PythonOperator"
    assert mapped.expand_input == {"op_args": [[1], [2]]}
    assert mapped.partial_kwargs["python_callable"] is double


def test_bash_operator_partial_expand() -> None:
    with DAG("d") as built:
        mapped = BashOperator.partial(task_id="b", retries=1).expand(
            bash_command=["echo 1", "echo 2"]
        )

    assert built.get_task("b") is mapped
    assert isinstance(mapped, MappedOperator)
    assert mapped.task_type == "BashOperator"
    assert mapped.retries == 1
    assert mapped.expand_input == {"bash_command": ["echo 1", "echo 2"]}


def test_classic_operator_expand_over_upstream_output() -> None:
    with DAG("d") as built:
        commands = numbers()
        BashOperator.partial(task_id="b").expand(bash_command=commands)

    assert built.get_task("b").upstream_task_ids == {"numbers"}


def test_mapped_classic_operator_in_rshift() -> None:
    with DAG("d") as built:
        mapped = BashOperator.partial(task_id="b").expand(bash_command=["echo 1"])
        numbers() >> mapped

    assert built.get_task("b").upstream_task_ids == {"numbers"}


@pytest.mark.parametrize("value", [5, "abc", None, 1.5])
def test_expand_over_a_non_list_literal_is_rejected(value: object) -> None:
    pattern = f"'add'.*argument 'x'.*{type(value).__name__}"
    with DAG("d"), pytest.raises(MappingError, match=pattern):
        add.expand(x=value)


def test_classic_expand_over_a_string_is_rejected() -> None:
    with DAG("d"), pytest.raises(MappingError, match=r"'b'.*'bash_command'.*str"):
        BashOperator.partial(task_id="b").expand(bash_command="echo 1")


def test_expand_with_nothing_to_map_is_rejected() -> None:
    with DAG("d"), pytest.raises(MappingError, match=r"'add'.*at least one"):
        add.expand()


def test_expand_an_argument_the_task_does_not_take_is_rejected() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match=r"'add'.*'z'"):
        add.expand(z=[1])


def test_classic_expand_an_unknown_argument_is_rejected() -> None:
    with DAG("d"), pytest.raises(InvalidOperatorArgumentError, match=r"'b'.*\['foo'\]"):
        BashOperator.partial(task_id="b").expand(foo=[1])


def test_classic_partial_with_an_unknown_argument_is_rejected() -> None:
    with DAG("d"), pytest.raises(InvalidOperatorArgumentError, match=r"'b'.*\['foo'\]"):
        BashOperator.partial(task_id="b", foo=1).expand(bash_command=["echo 1"])


def test_classic_partial_without_task_id_is_rejected() -> None:
    with pytest.raises(MappingError, match=r"BashOperator.partial.*task_id"):
        BashOperator.partial(bash_command="echo")


def test_classic_argument_in_partial_and_expand_is_rejected() -> None:
    with DAG("d"), pytest.raises(MappingError, match=r"'b'.*bash_command"):
        BashOperator.partial(task_id="b", bash_command="x").expand(bash_command=["y"])


def test_task_argument_in_partial_and_expand_is_rejected() -> None:
    with DAG("d"), pytest.raises(MappingError, match=r"'add'.*'x'"):
        add.partial(x=1).expand(x=[2, 3])


def test_expand_outside_a_dag_is_rejected() -> None:
    with pytest.raises(TaskOutsideDagError, match=r"'add'"):
        add.expand(x=[1])


def test_mapped_task_group_maps_its_tasks() -> None:
    with DAG("d") as built:
        @task_group
        def per_item(x: int) -> None:
            first = add(x, 1)
            add(first, 2)

        group = per_item.expand(x=[1, 2, 3])

    assert isinstance(group, TaskGroup)
    assert group.group_id == "per_item"
    assert group.expand_input == {"x": [1, 2, 3]}
    assert built.task_ids == ["per_item.add", "per_item.add__1"]
    assert built.get_task("per_item.add__1").upstream_task_ids == {"per_item.add"}


def test_mapped_task_group_over_upstream_output_depends_on_it() -> None:
    with DAG("d") as built:
        @task_group
        def per_item(x: int) -> None:
            add(x)

        per_item.partial().expand(x=numbers())

    assert built.get_task("per_item.add").upstream_task_ids == {"numbers"}


def test_mapped_task_group_over_a_non_list_is_rejected() -> None:
    with DAG("d"):
        @task_group
        def per_item(x: int) -> None:
            add(x)

        with pytest.raises(MappingError, match=r"'per_item'.*argument 'x'.*int"):
            per_item.expand(x=5)


def test_mapped_task_group_with_an_unknown_argument_is_rejected() -> None:
    with DAG("d"):
        @task_group
        def per_item(x: int) -> None:
            add(x)

        with pytest.raises(MappingError, match=r"'per_item'.*\['y'\]"):
            per_item.expand(y=[1])


def test_mapping_a_task_inside_a_mapped_group_over_a_reference_is_rejected() -> None:
    with DAG("d"):
        @task_group
        def per_item(x: int) -> None:
            add.expand(x=numbers())

        with pytest.raises(MappingError, match=r"'per_item.add'.*'per_item'"):
            per_item.expand(x=[1, 2])
