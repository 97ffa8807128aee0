"""Task groups: ``TaskGroup("g")`` and ``@task_group``: prefixed ids, nesting, ``>>``."""

from __future__ import annotations

import pytest

from mlpipe import DAG, TaskGroup, XComArg, task, task_group
from mlpipe.errors import DuplicateTaskIdError, InvalidTaskIdError, TaskOutsideDagError
from mlpipe.operators import EmptyOperator


def test_ids_inside_a_group_are_prefixed() -> None:
    with DAG("d") as built, TaskGroup("prep") as prep:
        clean = EmptyOperator(task_id="clean")

    assert prep.group_id == "prep"
    assert clean.task_id == "prep.clean"
    assert built.task_ids == ["prep.clean"]
    assert clean.task_group is prep


def test_nested_groups_prefix_every_level() -> None:
    with DAG("d") as built, TaskGroup("outer"):
        with TaskGroup("inner") as inner:
            EmptyOperator(task_id="t")
        EmptyOperator(task_id="u")

    assert inner.group_id == "outer.inner"
    assert built.task_ids == ["outer.inner.t", "outer.u"]


def test_prefix_group_id_false_keeps_plain_ids() -> None:
    with DAG("d") as built:
        with TaskGroup("plain", prefix_group_id=False):
            EmptyOperator(task_id="t")
        with TaskGroup("outer"), TaskGroup("quiet", prefix_group_id=False):
            EmptyOperator(task_id="u")

    assert built.task_ids == ["t", "outer.u"]


def test_group_with_dag_argument_outside_a_with_block() -> None:
    built = DAG("d")

    with TaskGroup("g", dag=built):
        inside = EmptyOperator(task_id="t")

    assert inside.dag is built
    assert built.task_ids == ["g.t"]


def test_at_task_inside_group_with_dag_argument() -> None:
    built = DAG("d")

    @task
    def work() -> int:
        return 1

    with TaskGroup("g", dag=built):
        out = work()

    assert out.operator.dag is built
    assert built.task_ids == ["g.work"]


def test_group_in_rshift_uses_its_roots_and_leaves() -> None:
    with DAG("d"):
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as group:
            first = EmptyOperator(task_id="first")
            second = EmptyOperator(task_id="second")
            third = EmptyOperator(task_id="third")
            first >> [second, third]
        end = EmptyOperator(task_id="end")
        start >> group >> end

    assert [t.task_id for t in group.roots] == ["g.first"]
    assert [t.task_id for t in group.leaves] == ["g.second", "g.third"]
    assert start.downstream_task_ids == {"g.first"}
    assert first.upstream_task_ids == {"start"}
    assert end.upstream_task_ids == {"g.second", "g.third"}


def test_group_to_group_links_leaves_to_roots() -> None:
    with DAG("d"):
        with TaskGroup("a") as a:
            EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
        with TaskGroup("b") as b:
            EmptyOperator(task_id="p")
            EmptyOperator(task_id="q")
        a >> b

    assert {t.task_id for t in b.roots} == {"b.p", "b.q"}
    for root in b.roots:
        assert root.upstream_task_ids == {"a.y"}


def test_group_default_args_apply_to_its_tasks() -> None:
    with DAG("d", default_args={"retries": 1, "pool": "cpu"}):
        with TaskGroup("g", default_args={"retries": 4}):
            inherits = EmptyOperator(task_id="inherits")
            overrides = EmptyOperator(task_id="overrides", retries=0)
        outside = EmptyOperator(task_id="outside")

    assert (inherits.retries, inherits.pool) == (4, "cpu")
    assert overrides.retries == 0
    assert outside.retries == 1


def test_task_group_created_outside_a_dag_is_rejected() -> None:
    with pytest.raises(TaskOutsideDagError, match=r"TaskGroup 'lonely'.*outside a DAG"):
        TaskGroup("lonely")


def test_group_id_with_illegal_characters_is_rejected() -> None:
    with DAG("d"), pytest.raises(InvalidTaskIdError, match=r"group_id 'my group'"):
        TaskGroup("my group")


def test_two_groups_with_one_id_are_rejected() -> None:
    with DAG("d"):
        TaskGroup("g")
        with pytest.raises(DuplicateTaskIdError, match=r"'d'.*'g'"):
            TaskGroup("g")


def test_task_and_group_cannot_share_an_id() -> None:
    with DAG("d"):
        TaskGroup("g")
        EmptyOperator(task_id="t")
        with pytest.raises(DuplicateTaskIdError, match=r"'g'"):
            EmptyOperator(task_id="g")
        with pytest.raises(DuplicateTaskIdError, match=r"'t'"):
            TaskGroup("t")


def test_at_task_group_returns_the_group_when_the_function_returns_none() -> None:
    with DAG("d") as built:
        @task_group
        def prep() -> None:
            EmptyOperator(task_id="clean")

        group = prep()

    assert isinstance(group, TaskGroup)
    assert group.group_id == "prep"
    assert built.task_ids == ["prep.clean"]


def test_at_task_group_returns_what_the_function_returns() -> None:
    with DAG("d"):
        @task
        def clean() -> int:
            return 1

        @task_group
        def prep() -> XComArg:
            return clean()

        out = prep()

    assert isinstance(out, XComArg)
    assert out.operator.task_id == "prep.clean"


def test_at_task_group_called_twice_gets_suffixed_ids() -> None:
    with DAG("d") as built:
        @task_group
        def prep() -> None:
            EmptyOperator(task_id="clean")

        first = prep()
        second = prep()

    assert (first.group_id, second.group_id) == ("prep", "prep__1")
    assert built.task_ids == ["prep.clean", "prep__1.clean"]


def test_at_task_group_with_group_id_and_override() -> None:
    with DAG("d") as built:
        @task_group(group_id="cleaning")
        def prep() -> None:
            EmptyOperator(task_id="clean")

        prep()
        prep.override(group_id="again")()

    assert built.task_ids == ["cleaning.clean", "again.clean"]


def test_at_task_group_takes_part_in_rshift() -> None:
    with DAG("d"):
        @task_group
        def prep() -> None:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

        start = EmptyOperator(task_id="start")
        end = EmptyOperator(task_id="end")
        start >> prep() >> end

    assert start.downstream_task_ids == {"prep.a"}
    assert end.upstream_task_ids == {"prep.b"}


def test_at_task_group_passes_xcom_args_into_the_group() -> None:
    with DAG("d") as built:
        @task
        def load() -> int:
            return 1

        @task
        def scale(value: int) -> int:
            return value

        @task_group
        def prep(value: XComArg) -> XComArg:
            return scale(value)

        prep(load())

    assert built.get_task("prep.scale").upstream_task_ids == {"load"}


def test_at_task_group_called_outside_a_dag_is_rejected() -> None:
    @task_group
    def prep() -> None:
        EmptyOperator(task_id="clean")

    with pytest.raises(TaskOutsideDagError, match=r"'prep'.*outside a DAG"):
        prep()


def test_at_task_inside_a_group_called_twice() -> None:
    with DAG("d") as built:
        @task
        def step() -> int:
            return 1

        with TaskGroup("g"):
            step()
            step()

    assert built.task_ids == ["g.step", "g.step__1"]
