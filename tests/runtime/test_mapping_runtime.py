"""dag.test(): dynamic task mapping at run time (.expand, .partial, groups, failures)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mlpipe import DAG, task, task_group
from mlpipe.errors import TaskSkipped
from mlpipe.operators import BashOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def mapped_states(run, task_id: str) -> dict[int, str]:
    return {ti.map_index: str(ti.state) for ti in run.task_instances if ti.task_id == task_id}


def test_expand_over_a_literal_makes_one_instance_per_value() -> None:
    received: list[Any] = []
    with DAG("map_literal", start_date=LOGICAL) as dag:

        @task
        def times_ten(x: int) -> int:
            print(f"working on {x}")
            return x * 10

        @task
        def collect(values: list[int]) -> None:
            received.append(values)

        collect(times_ten.expand(x=[3, 1, 2]))

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert mapped_states(run, "times_ten") == {0: "success", 1: "success", 2: "success"}
    assert received == [[30, 10, 20]]
    for index, value in enumerate([3, 1, 2]):
        ti = run.get_task_instance("times_ten", map_index=index)
        assert ti.xcom_pull() == value * 10
        assert f"working on {value}" in ti.log
        others = {3, 1, 2} - {value}
        assert all(f"working on {o}" not in ti.log for o in others)
    assert run.get_task_instance("times_ten") is None


def test_expand_over_an_upstream_output() -> None:
    received: list[Any] = []
    with DAG("map_upstream", start_date=LOGICAL) as dag:

        @task
        def get_files() -> list[str]:
            return ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]

        @task
        def size(name: str) -> int:
            return len(name) + ord(name[0])

        @task
        def collect(sizes: list[int]) -> None:
            received.append(sizes)

        collect(size.expand(name=get_files()))

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert received == [[5 + ord(c) for c in "abcd"]]
    assert sorted(mapped_states(run, "size")) == [0, 1, 2, 3]


def test_results_keep_map_index_order_with_many_instances() -> None:
    received: list[Any] = []
    with DAG("map_order", start_date=LOGICAL) as dag:

        @task
        def ident(x: int) -> int:
            return x

        @task
        def collect(values: list[int]) -> None:
            received.append(values)

        collect(ident.expand(x=list(range(25, 0, -1))))

    dag.test(LOGICAL)

    assert received == [list(range(25, 0, -1))]


def test_downstream_pulling_a_mapped_task_by_id_gets_the_list() -> None:
    with DAG("map_pull", start_date=LOGICAL) as dag:

        @task
        def square(x: int) -> int:
            return x * x

        mapped = square.expand(x=[1, 2, 3])
        reader = PythonOperator(task_id="reader",
                                python_callable=lambda ti: ti.xcom_pull(task_ids="square"))
        mapped >> reader

    run = dag.test(LOGICAL)

    assert list(run.get_task_instance("reader").xcom_pull()) == [1, 4, 9]


def test_empty_upstream_list_skips_the_mapped_task_and_its_downstream() -> None:
    ran: list[Any] = []
    with DAG("map_empty", start_date=LOGICAL) as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task
        def work(x: int) -> int:
            ran.append(x)
            return x

        @task
        def collect(values: list[int]) -> None:
            ran.append(values)

        collect(work.expand(x=nothing()))

    run = dag.test(LOGICAL)

    assert ran == []
    assert mapped_states(run, "work") == {-1: "skipped"}
    assert run.get_task_instance("collect").state == "skipped"
    assert run.state == "success"


def test_empty_literal_list_skips_the_mapped_task() -> None:
    with DAG("map_empty_literal", start_date=LOGICAL) as dag:

        @task
        def work(x: int) -> int:
            return x

        work.expand(x=[])

    run = dag.test(LOGICAL)

    assert mapped_states(run, "work") == {-1: "skipped"}


def test_partial_fixes_arguments_and_expand_maps_the_rest() -> None:
    with DAG("map_partial", start_date=LOGICAL) as dag:

        @task
        def add(x: int, y: int) -> int:
            return x + y

        @task
        def collect(values: list[int]) -> list[int]:
            return values

        collect(add.partial(y=100).expand(x=[1, 2, 3]))

    run = dag.test(LOGICAL)

    assert run.get_task_instance("collect").xcom_pull() == [101, 102, 103]


def test_classic_operator_partial_expand() -> None:
    with DAG("map_operator", start_date=LOGICAL) as dag:
        echo = BashOperator.partial(task_id="echo").expand(
            bash_command=["echo first", "echo second"])
        PythonOperator.partial(task_id="py", python_callable=lambda a, b: a * b).expand(
            op_args=[[2, 3], [4, 5]])

        @task
        def collect(lines: list[str]) -> list[str]:
            return lines

        collect(echo.output)

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert run.get_task_instance("collect").xcom_pull() == ["first", "second"]
    assert [run.get_task_instance("py", i).xcom_pull() for i in (0, 1)] == [6, 20]


def test_two_expanded_arguments_form_a_cartesian_product() -> None:
    with DAG("map_product", start_date=LOGICAL) as dag:

        @task
        def combine(x: int, y: str) -> str:
            return f"{x}{y}"

        @task
        def collect(values: list[str]) -> list[str]:
            return values

        collect(combine.expand(x=[1, 2], y=["a", "b", "c"]))

    run = dag.test(LOGICAL)

    assert len(mapped_states(run, "combine")) == 6
    assert run.get_task_instance("collect").xcom_pull() == ["1a", "1b", "1c", "2a", "2b", "2c"]


def test_second_order_mapping() -> None:
    with DAG("map_second_order", start_date=LOGICAL) as dag:

        @task
        def get_nums() -> list[int]:
            return [1, 2, 3]

        @task
        def times_2(num: int) -> int:
            return num * 2

        @task
        def add_10(num: int) -> int:
            return num + 10

        @task
        def collect(values: list[int]) -> list[int]:
            return values

        collect(add_10.expand(num=times_2.expand(num=get_nums())))

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert run.get_task_instance("collect").xcom_pull() == [12, 14, 16]
    assert mapped_states(run, "add_10") == {0: "success", 1: "success", 2: "success"}


def _mapped_group_dag(values: Any, *, fail_on: int | None = None) -> DAG:
    with DAG("map_group", start_date=LOGICAL) as dag:

        @task
        def double(x: int) -> int:
            print(f"doubling {x}")
            return x * 2

        @task
        def plus_one(x: int) -> int:
            if x == fail_on:
                raise ValueError(f"refusing {x}")
            return x + 1

        @task_group
        def per_item(x: int) -> Any:
            return plus_one(double(x))

        @task
        def collect(values: list[int]) -> list[int]:
            return values

        @task
        def source() -> list[int]:
            return values

        collect(per_item.expand(x=source()))
    return dag


def test_mapped_task_group_chains_two_tasks_per_map_index() -> None:
    run = _mapped_group_dag([1, 2, 3]).test(LOGICAL)

    assert run.state == "success"
    assert mapped_states(run, "per_item.double") == {0: "success", 1: "success", 2: "success"}
    assert mapped_states(run, "per_item.plus_one") == {0: "success", 1: "success", 2: "success"}
    assert [run.get_task_instance("per_item.plus_one", i).xcom_pull() for i in range(3)] == \
        [3, 5, 7]
    assert run.get_task_instance("collect").xcom_pull() == [3, 5, 7]
    assert "doubling 2" in run.get_task_instance("per_item.double", 1).log


def test_mapped_task_group_over_a_literal() -> None:
    with DAG("map_group_literal", start_date=LOGICAL) as dag:

        @task
        def label(name: str) -> str:
            return name.upper()

        @task
        def shout(text: str) -> str:
            return text + "!"

        @task_group
        def loud(name: str) -> Any:
            return shout(label(name))

        @task
        def collect(values: list[str]) -> list[str]:
            return values

        collect(loud.expand(name=["a", "b"]))

    run = dag.test(LOGICAL)

    assert run.get_task_instance("collect").xcom_pull() == ["A!", "B!"]


def test_failure_in_one_mapped_group_instance_only_affects_that_index() -> None:
    run = _mapped_group_dag([1, 2, 3], fail_on=4).test(LOGICAL)  # index 1: double(2) == 4

    assert mapped_states(run, "per_item.double") == {0: "success", 1: "success", 2: "success"}
    assert mapped_states(run, "per_item.plus_one") == {0: "success", 1: "failed", 2: "success"}
    assert "refusing 4" in run.get_task_instance("per_item.plus_one", 1).log
    assert "refusing" not in run.get_task_instance("per_item.plus_one", 0).log
    assert run.get_task_instance("collect").state == "upstream_failed"
    assert run.state == "failed"


def test_failure_in_one_mapped_instance() -> None:
    with DAG("map_one_fails", start_date=LOGICAL) as dag:

        @task
        def check(x: int) -> int:
            if x == 2:
                raise ValueError("two is bad")
            return x

        @task
        def collect(values: list[int]) -> None:
            pass

        collect(check.expand(x=[1, 2, 3]))

    run = dag.test(LOGICAL)

    assert mapped_states(run, "check") == {0: "success", 1: "failed", 2: "success"}
    assert "two is bad" in run.get_task_instance("check", 1).log
    assert "two is bad" not in run.get_task_instance("check", 0).log
    assert run.get_task_instance("collect").state == "upstream_failed"
    assert run.state == "failed"


def test_mapped_instances_retry_independently() -> None:
    calls: list[tuple[int, int]] = []
    with DAG("map_retry", start_date=LOGICAL) as dag:

        @task(retries=1, retry_delay=0)
        def flaky(x: int, ti=None) -> int:
            calls.append((x, ti.try_number))
            if x == 2 and ti.try_number == 1:
                raise RuntimeError("once")
            return x

        flaky.expand(x=[1, 2])

    run = dag.test(LOGICAL)

    assert run.get_task_instance("flaky", 0).try_number == 1
    assert run.get_task_instance("flaky", 1).try_number == 2
    assert sorted(calls) == [(1, 1), (2, 1), (2, 2)]
    assert run.state == "success"


def test_expanding_over_a_non_list_fails_the_mapped_task_clearly() -> None:
    with DAG("map_not_list", start_date=LOGICAL) as dag:

        @task
        def one_number() -> int:
            return 5

        @task
        def work(item: int) -> int:
            return item

        @task
        def after(values: list[int]) -> None:
            pass

        after(work.expand(item=one_number()))

    run = dag.test(LOGICAL)

    failed = [ti for ti in run.task_instances if ti.task_id == "work"]
    assert [str(ti.state) for ti in failed] == ["failed"]
    log = failed[0].log
    assert "item" in log
    assert "int" in log
    assert "list" in log
    assert run.get_task_instance("after").state == "upstream_failed"
    assert run.state == "failed"


def test_expanding_over_a_string_is_rejected_not_split_into_characters() -> None:
    with DAG("map_string", start_date=LOGICAL) as dag:

        @task
        def word() -> str:
            return "abc"

        @task
        def work(item: str) -> str:
            return item

        work.expand(item=word())

    run = dag.test(LOGICAL)

    assert [str(ti.state) for ti in run.task_instances if ti.task_id == "work"] == ["failed"]


def test_trigger_rules_count_every_mapped_instance() -> None:
    with DAG("map_rules", start_date=LOGICAL) as dag:

        @task
        def check(x: int) -> int:
            if x == 2:
                raise ValueError("two is bad")
            return x

        @task
        def maybe(x: int) -> int:
            if x == 2:
                raise TaskSkipped("skip two")
            return x

        checked = check.expand(x=[1, 2, 3])
        maybe_done = maybe.expand(x=[1, 2, 3])
        alert = PythonOperator(task_id="alert", python_callable=lambda: "alerted",
                               trigger_rule="one_failed")
        cleanup = PythonOperator(task_id="cleanup", python_callable=lambda: "cleaned",
                                 trigger_rule="all_done")
        strict = PythonOperator(task_id="strict", python_callable=lambda: None)
        after_skip = PythonOperator(task_id="after_skip", python_callable=lambda: None)
        checked >> [alert, cleanup, strict]
        maybe_done >> after_skip

    run = dag.test(LOGICAL)

    assert mapped_states(run, "maybe") == {0: "success", 1: "skipped", 2: "success"}
    assert run.get_task_instance("alert").state == "success"
    assert run.get_task_instance("cleanup").state == "success"
    assert run.get_task_instance("strict").state == "upstream_failed"
    assert run.get_task_instance("after_skip").state == "skipped"


def test_mapped_task_over_a_failed_upstream_is_upstream_failed() -> None:
    with DAG("map_up_failed", start_date=LOGICAL) as dag:

        @task
        def source() -> list[int]:
            raise RuntimeError("no data")

        @task
        def work(x: int) -> int:
            return x

        work.expand(x=source())

    run = dag.test(LOGICAL)

    assert mapped_states(run, "work") == {-1: "upstream_failed"}
    assert run.state == "failed"


def test_mapped_task_over_a_skipped_upstream_is_skipped() -> None:
    with DAG("map_up_skipped", start_date=LOGICAL) as dag:

        @task.short_circuit
        def gate() -> bool:
            return False

        @task
        def source() -> list[int]:
            return [1, 2]

        @task
        def work(x: int) -> int:
            return x

        items = source()
        gate() >> items
        work.expand(x=items)

    run = dag.test(LOGICAL)

    assert run.get_task_instance("source").state == "skipped"
    assert mapped_states(run, "work") == {-1: "skipped"}
    assert run.state == "success"


def test_branch_inside_a_mapped_task_group_skips_per_map_index() -> None:
    with DAG("map_group_branch", start_date=LOGICAL) as dag:

        @task_group
        def per_item(x: int) -> None:
            @task.branch
            def route(x: int) -> str:
                return "per_item.even" if x % 2 == 0 else "per_item.odd"

            @task
            def even() -> str:
                return "even"

            @task
            def odd() -> str:
                return "odd"

            route(x) >> [even(), odd()]

        per_item.expand(x=[1, 2, 3])

    run = dag.test(LOGICAL)

    assert mapped_states(run, "per_item.route") == {0: "success", 1: "success", 2: "success"}
    assert mapped_states(run, "per_item.odd") == {0: "success", 1: "skipped", 2: "success"}
    assert mapped_states(run, "per_item.even") == {0: "skipped", 1: "success", 2: "skipped"}
    assert run.state == "success"


def test_upstream_failure_inside_a_mapped_group_stays_in_its_index() -> None:
    with DAG("map_group_up_failed", start_date=LOGICAL) as dag:

        @task
        def first(x: int) -> int:
            if x == 20:
                raise ValueError("bad twenty")
            return x

        @task
        def second(x: int) -> int:
            return x + 1

        @task_group
        def pair(x: int) -> Any:
            return second(first(x))

        pair.expand(x=[10, 20, 30])

    run = dag.test(LOGICAL)

    assert mapped_states(run, "pair.first") == {0: "success", 1: "failed", 2: "success"}
    assert mapped_states(run, "pair.second") == {0: "success", 1: "upstream_failed",
                                                  2: "success"}
    assert run.get_task_instance("pair.second", 2).xcom_pull() == 31


def test_timeout_in_one_mapped_instance() -> None:
    with DAG("map_timeout", start_date=LOGICAL) as dag:

        @task(execution_timeout=timedelta(seconds=0.3))
        def nap(seconds: float) -> float:
            time.sleep(seconds)
            return seconds

        nap.expand(seconds=[0, 30])

    run = dag.test(LOGICAL)

    assert mapped_states(run, "nap") == {0: "success", 1: "failed"}
    assert "timed out" in run.get_task_instance("nap", 1).log
