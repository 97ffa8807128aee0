"""Dependencies: ``>>``, ``<<``, lists, set_upstream/downstream, ``chain``, XComArgs, cycles."""

from __future__ import annotations

import re

import pytest

from mlpipe import DAG, XComArg, chain, task
from mlpipe.core.operator import BaseOperator
from mlpipe.errors import CycleError, DagDefinitionError
from mlpipe.operators import EmptyOperator


def ids(tasks: list[BaseOperator]) -> list[str]:
    return [t.task_id for t in tasks]


def test_rshift_makes_right_side_downstream() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        returned = a >> b

    assert returned is b
    assert a.downstream_task_ids == {"b"}
    assert b.upstream_task_ids == {"a"}


def test_lshift_makes_right_side_upstream() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        returned = a << b

    assert returned is b
    assert a.upstream_task_ids == {"b"}
    assert b.downstream_task_ids == {"a"}


def test_rshift_to_a_list_fans_out() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        a >> [b, c]

    assert a.downstream_task_ids == {"b", "c"}
    assert b.upstream_task_ids == c.upstream_task_ids == {"a"}


def test_list_rshift_fans_in() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        returned = [a, b] >> c

    assert returned is c
    assert c.upstream_task_ids == {"a", "b"}


def test_list_lshift_fans_out() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        [a, b] << c

    assert c.downstream_task_ids == {"a", "b"}


def test_set_downstream_and_set_upstream() -> None:
    with DAG("d"):
        a, b, c, d = (EmptyOperator(task_id=t) for t in "abcd")
        a.set_downstream(b)
        c.set_upstream(b)
        d.set_upstream([a, c])

    assert a.downstream_task_ids == {"b", "d"}
    assert b.downstream_task_ids == {"c"}
    assert d.upstream_task_ids == {"a", "c"}


def test_repeating_a_dependency_adds_it_once() -> None:
    with DAG("d"):
        a, b = (EmptyOperator(task_id=t) for t in "ab")
        a >> b
        a >> b
        b << a

    assert a.downstream_list == [b]
    assert b.upstream_list == [a]


def test_rshift_to_something_not_a_task_is_a_type_error() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(TypeError, match=r"cannot set a dependency on 'b'"):
            a >> ["b"]  # type: ignore[list-item]


def test_chain_links_tasks_in_order() -> None:
    with DAG("d") as built:
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        chain(a, b, c)

    assert ids(built.topological_sort()) == ["a", "b", "c"]
    assert a.downstream_task_ids == {"b"}
    assert c.upstream_task_ids == {"b"}


def test_chain_pairs_adjacent_lists_element_wise() -> None:
    with DAG("d") as built:
        a, b, c, d, e, f = (EmptyOperator(task_id=t) for t in "abcdef")
        chain(a, [b, c], [d, e], f)

    edges = {(t.task_id, down) for t in built.tasks for down in t.downstream_task_ids}
    assert edges == {
        ("a", "b"), ("a", "c"),
        ("b", "d"), ("c", "e"),
        ("d", "f"), ("e", "f"),
    }


def test_chain_with_lists_of_different_lengths_is_rejected() -> None:
    with DAG("d"):
        a, b, c, d, e, f = (EmptyOperator(task_id=t) for t in "abcdef")
        with pytest.raises(DagDefinitionError, match=r"different lengths \(2 and 3\)"):
            chain(a, [b, c], [d, e, f])


def test_chain_accepts_xcom_args() -> None:
    with DAG("d"):
        @task
        def produce() -> int:
            return 1

        first = produce()
        second = produce()
        last = EmptyOperator(task_id="last")
        chain(first, second, last)

    assert first.operator.downstream_task_ids == {"produce__1"}
    assert last.upstream_task_ids == {"produce__1"}


def test_xcom_args_take_part_in_rshift() -> None:
    with DAG("d"):
        @task
        def produce() -> int:
            return 1

        out = produce()
        after = EmptyOperator(task_id="after")
        before = EmptyOperator(task_id="before")
        returned = before >> out >> after

    assert returned is after
    assert out.operator.upstream_task_ids == {"before"}
    assert after.upstream_task_ids == {"produce"}


def test_list_of_xcom_args_rshift_task() -> None:
    with DAG("d"):
        @task
        def produce() -> int:
            return 1

        join = EmptyOperator(task_id="join")
        [produce(), produce()] >> join

    assert join.upstream_task_ids == {"produce", "produce__1"}


def test_passing_an_xcom_arg_creates_the_dependency() -> None:
    with DAG("d"):
        @task
        def produce() -> int:
            return 1

        @task
        def consume(value: int) -> int:
            return value

        produced = produce()
        consumed = consume(produced)

    assert consumed.operator.upstream_task_ids == {"produce"}
    assert produced.operator.downstream_task_ids == {"consume"}


def test_xcom_arg_in_args_and_kwargs_both_become_upstream() -> None:
    with DAG("d") as built:
        @task
        def produce() -> int:
            return 1

        @task
        def consume(value: int, *, other: int) -> int:
            return value + other

        consume(produce(), other=produce())

    assert built.get_task("consume").upstream_task_ids == {"produce", "produce__1"}


def test_classic_operator_output_passed_to_a_task_creates_the_dependency() -> None:
    with DAG("d") as built:
        source = EmptyOperator(task_id="source")

        @task
        def consume(value: object) -> object:
            return value

        consume({"nested": [source.output]})

    assert isinstance(source.output, XComArg)
    assert built.get_task("consume").upstream_task_ids == {"source"}


def test_roots_leaves_and_topological_sort(diamond: DAG) -> None:
    assert ids(diamond.roots) == ["start"]
    assert ids(diamond.leaves) == ["end"]
    order = ids(diamond.topological_sort())
    assert order[0] == "start"
    assert order[-1] == "end"
    assert sorted(order[1:3]) == ["left", "right"]


def test_topological_sort_puts_every_task_after_its_upstream() -> None:
    with DAG("d") as built:
        tasks = {t: EmptyOperator(task_id=t) for t in ["z", "y", "x", "w"]}
        tasks["w"] >> tasks["x"] >> tasks["z"]
        tasks["y"] >> tasks["z"]

    order = ids(built.topological_sort())
    assert sorted(order) == ["w", "x", "y", "z"]
    for t in built.tasks:
        assert all(order.index(up) < order.index(t.task_id) for up in t.upstream_task_ids)


def test_unconnected_tasks_are_both_roots_and_leaves() -> None:
    with DAG("d") as built:
        EmptyOperator(task_id="alone")
        EmptyOperator(task_id="also_alone")

    assert ids(built.roots) == ids(built.leaves) == ["alone", "also_alone"]


def _is_rotation_of(loop: list[str], expected_cycle: list[str]) -> bool:
    """True if ``loop`` (closed, first == last) walks ``expected_cycle`` in order."""
    if loop[0] != loop[-1]:
        return False
    ring = loop[:-1]
    doubled = expected_cycle + expected_cycle
    n = len(expected_cycle)
    return len(ring) == n and any(doubled[i:i + n] == ring for i in range(n))


def test_closing_a_loop_raises_cycle_error_naming_the_loop() -> None:
    with DAG("loops"):
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        a >> b >> c
        with pytest.raises(CycleError) as caught:
            c >> a

    err = caught.value
    assert err.dag_id == "loops"
    assert _is_rotation_of(err.cycle, ["a", "b", "c"])
    assert " -> ".join(err.cycle) in str(err)
    assert re.search(r"'loops'.*(a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)", str(err))


def test_rejected_cycle_leaves_the_dag_unchanged() -> None:
    with DAG("loops") as built:
        a, b = (EmptyOperator(task_id=t) for t in "ab")
        a >> b
        with pytest.raises(CycleError, match=r"cycle"):
            b >> a

    assert a.upstream_task_ids == set()
    assert b.downstream_task_ids == set()
    assert ids(built.topological_sort()) == ["a", "b"]


def test_a_task_upstream_of_itself_is_a_cycle() -> None:
    with DAG("loops"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(CycleError, match=r"a -> a") as caught:
            a >> a

    assert caught.value.cycle == ["a", "a"]


def test_cycle_through_xcom_args_is_detected() -> None:
    with DAG("loops"):
        @task
        def step(value: int) -> int:
            return value

        first = step(0)
        second = step(first)
        with pytest.raises(CycleError, match=r"step") as caught:
            second >> first

    assert _is_rotation_of(caught.value.cycle, ["step", "step__1"])
