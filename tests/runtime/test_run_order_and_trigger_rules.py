"""dag.test(): execution order, the eleven trigger rules end to end, and the run's state."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from mlpipe import DAG, TriggerRule, chain, task
from mlpipe.errors import TaskSkipped
from mlpipe.operators import EmptyOperator, PythonOperator

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.task_instances}


def _outcome_task(task_id: str, outcome: str, ran: list[str],
                  trigger_rule: str = "all_success") -> PythonOperator:
    """A task that ends in ``outcome``: success, failed, skipped or upstream_failed."""

    def body() -> None:
        ran.append(task_id)
        if outcome == "failed":
            raise RuntimeError(f"{task_id} fails on purpose")
        if outcome == "skipped":
            raise TaskSkipped(f"{task_id} skips on purpose")

    if outcome == "upstream_failed":
        root = _outcome_task(f"{task_id}_root", "failed", ran)
        op = PythonOperator(task_id=task_id, python_callable=body)
        root >> op
        return op
    return PythonOperator(task_id=task_id, python_callable=body, trigger_rule=trigger_rule)


def test_tasks_run_in_topological_order_not_creation_order() -> None:
    ran: list[str] = []
    with DAG("order", start_date=LOGICAL) as dag:
        # created in reverse order on purpose
        ops = {name: PythonOperator(task_id=name, python_callable=lambda n=name: ran.append(n))
               for name in ["join", "right", "left", "start"]}
        ops["start"] >> [ops["left"], ops["right"]] >> ops["join"]

    run = dag.test(LOGICAL)

    assert run.state == "success"
    assert ran[0] == "start"
    assert ran[-1] == "join"
    assert sorted(ran[1:3]) == ["left", "right"]
    assert run.task_instances[0].task_id == "start"


def test_long_chain_runs_each_task_once_after_its_upstream() -> None:
    ran: list[str] = []
    with DAG("long_chain", start_date=LOGICAL) as dag:
        ops = [PythonOperator(task_id=f"t{i}", python_callable=lambda i=i: ran.append(f"t{i}"))
               for i in reversed(range(30))]
        chain(*reversed(ops))

    run = dag.test(LOGICAL)

    assert ran == [f"t{i}" for i in range(30)]
    assert all(ti.try_number == 1 for ti in run.task_instances)


# (trigger rule, outcomes of the two or three upstream tasks, expected state of the target)
RULE_CASES = [
    ("all_success", ["success", "success"], "success"),
    ("all_success", ["success", "failed"], "upstream_failed"),
    ("all_success", ["success", "skipped"], "skipped"),
    ("all_failed", ["failed", "failed"], "success"),
    ("all_failed", ["failed", "upstream_failed"], "success"),
    ("all_failed", ["failed", "success"], "skipped"),
    ("all_failed", ["failed", "skipped"], "skipped"),
    ("all_done", ["success", "failed", "skipped"], "success"),
    ("all_done", ["upstream_failed", "failed"], "success"),
    ("all_skipped", ["skipped", "skipped"], "success"),
    ("all_skipped", ["skipped", "success"], "skipped"),
    ("all_skipped", ["skipped", "failed"], "skipped"),
    ("one_success", ["failed", "success"], "success"),
    ("one_success", ["failed", "failed"], "upstream_failed"),
    ("one_success", ["failed", "skipped"], "upstream_failed"),
    ("one_success", ["skipped", "skipped"], "skipped"),
    ("one_failed", ["success", "failed"], "success"),
    ("one_failed", ["success", "upstream_failed"], "success"),
    ("one_failed", ["success", "success"], "skipped"),
    ("one_failed", ["success", "skipped"], "skipped"),
    ("one_done", ["failed", "skipped"], "success"),
    ("one_done", ["success", "skipped"], "success"),
    ("one_done", ["skipped", "skipped"], "skipped"),
    ("none_failed", ["success", "skipped"], "success"),
    ("none_failed", ["skipped", "skipped"], "success"),
    ("none_failed", ["success", "failed"], "upstream_failed"),
    ("none_failed", ["success", "upstream_failed"], "upstream_failed"),
    ("none_failed_min_one_success", ["success", "skipped"], "success"),
    ("none_failed_min_one_success", ["skipped", "skipped"], "skipped"),
    ("none_failed_min_one_success", ["success", "failed"], "upstream_failed"),
    ("none_skipped", ["success", "failed"], "success"),
    ("none_skipped", ["success", "upstream_failed"], "success"),
    ("none_skipped", ["success", "skipped"], "skipped"),
    ("always", ["failed", "skipped"], "success"),
    ("always", ["upstream_failed", "upstream_failed"], "success"),
]


@pytest.mark.parametrize(("rule", "outcomes", "expected"), RULE_CASES,
                         ids=[f"{r}-{'+'.join(o)}" for r, o, _ in RULE_CASES])
def test_trigger_rule_decides_the_target(rule: str, outcomes: list[str], expected: str) -> None:
    ran: list[str] = []
    with DAG("rules", start_date=LOGICAL) as dag:
        ups = [_outcome_task(f"up{i}", o, ran) for i, o in enumerate(outcomes)]
        target = _outcome_task("target", "success", ran, trigger_rule=rule)
        ups >> target

    run = dag.test(LOGICAL)

    got = states(run)
    for i, outcome in enumerate(outcomes):
        assert got[f"up{i}"] == outcome
    assert got["target"] == expected
    assert ("target" in ran) is (expected == "success")


def test_trigger_rule_string_and_enum_are_the_same() -> None:
    ran: list[str] = []
    with DAG("rule_kinds", start_date=LOGICAL) as dag:
        bad = _outcome_task("bad", "failed", ran)
        by_str = PythonOperator(task_id="by_str", python_callable=lambda: ran.append("by_str"),
                                trigger_rule="all_failed")
        by_enum = PythonOperator(task_id="by_enum", python_callable=lambda: ran.append("by_enum"),
                                 trigger_rule=TriggerRule.ALL_FAILED)
        bad >> [by_str, by_enum]

    run = dag.test(LOGICAL)

    assert states(run)["by_str"] == states(run)["by_enum"] == "success"


def test_upstream_failed_propagates_down_a_chain() -> None:
    ran: list[str] = []
    with DAG("propagate", start_date=LOGICAL) as dag:
        a = _outcome_task("a", "failed", ran)
        b = _outcome_task("b", "success", ran)
        c = _outcome_task("c", "success", ran)
        d = _outcome_task("d", "success", ran)
        a >> b >> c >> d

    run = dag.test(LOGICAL)

    assert states(run) == {"a": "failed", "b": "upstream_failed", "c": "upstream_failed",
                           "d": "upstream_failed"}
    assert ran == ["a"]
    assert run.state == "failed"
    assert run.get_task_instance("b").try_number == 0


def test_skip_propagates_down_a_chain_and_run_succeeds() -> None:
    ran: list[str] = []
    with DAG("skip_chain", start_date=LOGICAL) as dag:
        a = _outcome_task("a", "skipped", ran)
        b = _outcome_task("b", "success", ran)
        c = _outcome_task("c", "success", ran)
        a >> b >> c

    run = dag.test(LOGICAL)

    assert states(run) == {"a": "skipped", "b": "skipped", "c": "skipped"}
    assert run.state == "success"


def test_run_fails_when_a_leaf_fails() -> None:
    ran: list[str] = []
    with DAG("leaf_fails", start_date=LOGICAL) as dag:
        _outcome_task("ok", "success", ran) >> _outcome_task("leaf", "failed", ran)

    run = dag.test(LOGICAL)

    assert run.state == "failed"


def test_run_fails_when_a_leaf_is_upstream_failed() -> None:
    ran: list[str] = []
    with DAG("leaf_upstream_failed", start_date=LOGICAL) as dag:
        _outcome_task("bad", "failed", ran) >> _outcome_task("leaf", "success", ran)
        _outcome_task("other_leaf", "success", ran)

    run = dag.test(LOGICAL)

    assert states(run)["leaf"] == "upstream_failed"
    assert states(run)["other_leaf"] == "success"
    assert run.state == "failed"


def test_run_succeeds_when_the_failed_tasks_all_done_downstream_succeeds() -> None:
    # Airflow judges the run by its leaves: a cleanup leaf that ran means success.
    ran: list[str] = []
    with DAG("cleanup", start_date=LOGICAL) as dag:
        bad = _outcome_task("bad", "failed", ran)
        cleanup = _outcome_task("cleanup", "success", ran, trigger_rule=TriggerRule.ALL_DONE)
        bad >> cleanup

    run = dag.test(LOGICAL)

    assert states(run) == {"bad": "failed", "cleanup": "success"}
    assert run.state == "success"


def test_run_with_only_skipped_and_successful_leaves_succeeds() -> None:
    ran: list[str] = []
    with DAG("skipped_leaf", start_date=LOGICAL) as dag:
        start = EmptyOperator(task_id="start")
        start >> [_outcome_task("skips", "skipped", ran), _outcome_task("works", "success", ran)]

    run = dag.test(LOGICAL)

    assert run.state == "success"


def test_dag_test_returns_a_failed_run_instead_of_raising() -> None:
    with DAG("no_raise", start_date=LOGICAL) as dag:

        @task
        def boom() -> None:
            raise ValueError("kaboom 42")

        boom()

    run = dag.test(LOGICAL)

    ti = run.get_task_instance("boom")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert "kaboom 42" in ti.log
    assert "ValueError" in ti.log


def test_sys_exit_in_a_task_fails_the_task_not_dag_test() -> None:
    # Airflow turns SystemExit(non-zero) inside a task into a task failure.
    with DAG("sys_exit", start_date=LOGICAL) as dag:

        @task
        def leave() -> None:
            sys.exit(3)

        @task
        def after() -> None:
            pass

        leave() >> after()

    run = dag.test(LOGICAL)

    assert run.get_task_instance("leave").state == "failed"
    assert run.get_task_instance("after").state == "upstream_failed"
    assert run.state == "failed"


@pytest.mark.parametrize("code", [0, None])
def test_sys_exit_with_a_success_code_ends_the_task_successfully(code: int | None) -> None:
    # Airflow treats SystemExit(0) / SystemExit() from a task as a normal return of None.
    with DAG("sys_exit_ok", start_date=LOGICAL) as dag:

        @task
        def leave() -> None:
            print("leaving early")
            sys.exit(code)

        @task
        def after() -> str:
            return "after ran"

        leave() >> after()

    run = dag.test(LOGICAL)

    assert run.get_task_instance("leave").state == "success"
    assert run.get_task_instance("leave").xcom_pull() is None
    assert run.get_task_instance("after").state == "success"
    assert run.state == "success"


def test_every_task_instance_is_reachable_by_get_task_instance() -> None:
    with DAG("lookup", start_date=LOGICAL) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

    run = dag.test(LOGICAL)

    assert {ti.task_id for ti in run.task_instances} == {"a", "b"}
    assert run.get_task_instance("a").map_index == -1
    assert run.get_task_instance("missing") is None
    assert run.dag_id == "lookup"
