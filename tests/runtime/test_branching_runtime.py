"""dag.test(): branches (@task.branch, BranchPythonOperator) and short-circuits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlpipe import DAG, TaskGroup, task
from mlpipe.operators import (
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)

LOGICAL = datetime(2024, 1, 15, tzinfo=UTC)


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.task_instances}


def _recorder(task_id: str, ran: list[str], **kwargs: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=lambda ti: ran.append(ti.task_id),
                          **kwargs)


def _diamond(choice: Any, ran: list[str], *, use_operator: bool) -> DAG:
    """branch -> (a -> a2 | b -> b2) -> join_any (none_failed_min_one_success), join_all."""
    with DAG("diamond", start_date=LOGICAL) as dag:
        if use_operator:
            branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        else:

            @task.branch
            def pick() -> Any:
                return choice

            branch = pick.override(task_id="branch")()
        a, a2 = _recorder("a", ran), _recorder("a2", ran)
        b, b2 = _recorder("b", ran), _recorder("b2", ran)
        join_any = _recorder("join_any", ran, trigger_rule="none_failed_min_one_success")
        join_all = _recorder("join_all", ran)
        branch >> [a, b]
        a >> a2
        b >> b2
        [a2, b2] >> join_any
        [a2, b2] >> join_all
    return dag


@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_branch_returning_a_task_id_skips_the_other_path(use_operator: bool) -> None:
    ran: list[str] = []
    run = _diamond("a", ran, use_operator=use_operator).test(LOGICAL)

    assert states(run) == {
        "branch": "success", "a": "success", "a2": "success", "b": "skipped",
        "b2": "skipped", "join_any": "success", "join_all": "skipped",
    }
    assert "b" not in ran and "b2" not in ran
    assert ran.index("join_any") > ran.index("a2")
    assert run.state == "success"
    assert run.get_task_instance("branch").xcom_pull() == "a"


@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_branch_returning_a_list_follows_every_listed_task(use_operator: bool) -> None:
    ran: list[str] = []
    run = _diamond(["a", "b"], ran, use_operator=use_operator).test(LOGICAL)

    assert states(run) == {
        "branch": "success", "a": "success", "a2": "success", "b": "success",
        "b2": "success", "join_any": "success", "join_all": "success",
    }


@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_branch_returning_none_skips_every_direct_downstream(use_operator: bool) -> None:
    ran: list[str] = []
    run = _diamond(None, ran, use_operator=use_operator).test(LOGICAL)

    assert states(run) == {
        "branch": "success", "a": "skipped", "a2": "skipped", "b": "skipped",
        "b2": "skipped", "join_any": "skipped", "join_all": "skipped",
    }
    assert ran == []
    assert run.state == "success"


def test_branch_returning_a_task_group_id_runs_the_group() -> None:
    ran: list[str] = []
    with DAG("branch_group", start_date=LOGICAL) as dag:

        @task.branch
        def pick() -> str:
            return "train"

        with TaskGroup("train") as train:
            _recorder("fit", ran) >> _recorder("score", ran)
        other = _recorder("other", ran)
        pick() >> [train, other]

    run = dag.test(LOGICAL)

    assert states(run) == {"pick": "success", "train.fit": "success",
                           "train.score": "success", "other": "skipped"}
    assert ran == ["train.fit", "train.score"]


def test_branch_returning_an_unknown_id_fails_and_names_it() -> None:
    ran: list[str] = []
    with DAG("branch_unknown", start_date=LOGICAL) as dag:

        @task.branch
        def pick() -> str:
            return "no_such_task"

        pick() >> [_recorder("a", ran), _recorder("b", ran)]

    run = dag.test(LOGICAL)

    branch = run.get_task_instance("pick")
    assert branch.state == "failed"
    assert "no_such_task" in branch.log
    assert states(run)["a"] == states(run)["b"] == "upstream_failed"
    assert ran == []
    assert run.state == "failed"


def test_branch_to_a_task_that_also_feeds_the_join_does_not_skip_the_join() -> None:
    # Airflow's "empty branch" rule: branch -> [task1, join], task1 -> join. Following
    # task1 must not skip join, which is downstream of task1 as well.
    ran: list[str] = []
    with DAG("empty_branch", start_date=LOGICAL) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "task1")
        task1 = _recorder("task1", ran)
        join = _recorder("join", ran, trigger_rule="none_failed_min_one_success")
        branch >> [task1, join]
        task1 >> join

    run = dag.test(LOGICAL)

    assert states(run) == {"branch": "success", "task1": "success", "join": "success"}
    assert ran == ["task1", "join"]


def test_branch_following_the_empty_path_skips_the_other_task_only() -> None:
    ran: list[str] = []
    with DAG("empty_path", start_date=LOGICAL) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "join")
        task1 = _recorder("task1", ran)
        join = _recorder("join", ran, trigger_rule="none_failed_min_one_success")
        branch >> [task1, join]
        task1 >> join

    run = dag.test(LOGICAL)

    assert states(run) == {"branch": "success", "task1": "skipped", "join": "success"}
    assert ran == ["join"]


def test_branch_callable_receives_the_context() -> None:
    ran: list[str] = []
    with DAG("branch_ctx", start_date=LOGICAL, params={"go": "right"}) as dag:

        @task.branch
        def pick(params: dict[str, Any]) -> str:
            return params["go"]

        pick() >> [_recorder("left", ran), _recorder("right", ran)]

    run = dag.test(LOGICAL, conf={"go": "left"})

    assert states(run)["left"] == "success"
    assert states(run)["right"] == "skipped"


# -- short-circuit -----------------------------------------------------------------------------


def _short_circuit_dag(value: Any, ran: list[str], *, use_operator: bool,
                       ignore_rules: bool = True) -> DAG:
    """check -> a -> b -> done_any (all_done); other -> done_any."""
    with DAG("short", start_date=LOGICAL) as dag:
        if use_operator:
            check = ShortCircuitOperator(task_id="check", python_callable=lambda: value,
                                         ignore_downstream_trigger_rules=ignore_rules)
        else:

            @task.short_circuit(ignore_downstream_trigger_rules=ignore_rules)
            def condition() -> Any:
                return value

            check = condition.override(task_id="check")()
        a, b = _recorder("a", ran), _recorder("b", ran)
        done_any = _recorder("done_any", ran, trigger_rule="all_done")
        other = _recorder("other", ran)
        check >> a >> b >> done_any
        other >> done_any
    return dag


@pytest.mark.parametrize("falsy", [False, None, 0, "", []], ids=repr)
@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_falsy_short_circuit_skips_every_descendant(falsy: Any, use_operator: bool) -> None:
    ran: list[str] = []
    run = _short_circuit_dag(falsy, ran, use_operator=use_operator).test(LOGICAL)

    assert states(run) == {"check": "success", "a": "skipped", "b": "skipped",
                           "done_any": "skipped", "other": "success"}
    assert ran == ["other"]
    assert run.state == "success"


@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_truthy_short_circuit_lets_everything_run(use_operator: bool) -> None:
    ran: list[str] = []
    run = _short_circuit_dag("yes", ran, use_operator=use_operator).test(LOGICAL)

    assert set(states(run).values()) == {"success"}
    assert sorted(ran) == ["a", "b", "done_any", "other"]


@pytest.mark.parametrize("use_operator", [False, True], ids=["decorator", "operator"])
def test_short_circuit_respecting_trigger_rules_skips_direct_downstream_only(
        use_operator: bool) -> None:
    ran: list[str] = []
    dag = _short_circuit_dag(False, ran, use_operator=use_operator, ignore_rules=False)

    run = dag.test(LOGICAL)

    # a is skipped by the short-circuit, b by its all_success rule, done_any runs (all_done)
    assert states(run) == {"check": "success", "a": "skipped", "b": "skipped",
                           "done_any": "success", "other": "success"}
    assert sorted(ran) == ["done_any", "other"]


def test_failing_short_circuit_callable_fails_downstream_upstream() -> None:
    ran: list[str] = []
    with DAG("short_fails", start_date=LOGICAL) as dag:

        @task.short_circuit
        def condition() -> bool:
            raise RuntimeError("cannot decide")

        condition() >> _recorder("after", ran)

    run = dag.test(LOGICAL)

    assert states(run) == {"condition": "failed", "after": "upstream_failed"}
    assert "cannot decide" in run.get_task_instance("condition").log


def test_mixed_skip_and_empty_operator_join() -> None:
    with DAG("empty_join", start_date=LOGICAL) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: ["x"])
        x, y = EmptyOperator(task_id="x"), EmptyOperator(task_id="y")
        end = EmptyOperator(task_id="end", trigger_rule="one_success")
        branch >> [x, y] >> end

    run = dag.test(LOGICAL)

    assert states(run) == {"branch": "success", "x": "success", "y": "skipped",
                           "end": "success"}


@pytest.mark.parametrize(("rule", "expected"), [
    ("none_failed", "success"),
    ("one_success", "success"),
    ("all_done", "success"),
    ("none_failed_min_one_success", "success"),
    ("all_success", "skipped"),
    ("none_skipped", "skipped"),
])
def test_join_after_a_branch_by_trigger_rule(rule: str, expected: str) -> None:
    ran: list[str] = []
    with DAG("branch_join", start_date=LOGICAL) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")
        join = _recorder("join", ran, trigger_rule=rule)
        branch >> [_recorder("left", ran), _recorder("right", ran)] >> join

    run = dag.test(LOGICAL)

    assert states(run)["right"] == "skipped"
    assert states(run)["join"] == expected
    assert ("join" in ran) is (expected == "success")


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_a_branch_choice_is_stored_with_its_try_not_as_an_xcom(executor: str,
                                                               tmp_path: Any) -> None:
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    with DAG("pick_one", start_date=LOGICAL) as dag:
        @task.branch
        def pick() -> str:
            return "left"

        chosen = pick()
        chosen >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
    engine = Engine.from_settings(load_settings(executor=executor, parallelism=2,
                                                dags_folder=tmp_path))
    record = engine.trigger(dag, run_id="r1")

    run = engine.run(dag, record.run_id)

    assert states(run) == {"pick": "success", "left": "success", "right": "skipped"}
    branch = engine.store.get_ti(run.get_task_instance("pick").key)  # type: ignore[union-attr]
    assert branch is not None and branch.skip_downstream == '["right"]'
    assert set(engine.store.get_xcoms("pick_one", "r1", "pick", "return_value")) == {-1}
    assert engine.store.get_xcoms("pick_one", "r1", "pick", "__mlpipe_skip__") == {}
    engine.clear(dag, run_id="r1", task_regex="^pick$")
    assert engine.store.get_ti(branch.key).skip_downstream is None  # type: ignore[union-attr]
