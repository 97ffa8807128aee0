"""``@task.branch`` and ``@task.short_circuit``: which downstream tasks run or skip."""

from __future__ import annotations

import pytest

from mlpipe import DAG, chain, task
from mlpipe.operators import EmptyOperator

LOGICAL_DATE = "2024-03-05"


def states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.task_instances}


def branch_dag() -> DAG:
    @task.branch
    def choose(params=None):
        return params["path"]

    with DAG("choose_path", params={"path": "left"}) as built:
        pick = choose()
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        pick >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")] >> join
    return built


@pytest.mark.parametrize(("path", "ran", "skipped"),
                         [("left", "left", "right"), ("right", "right", "left")])
def test_branch_runs_the_chosen_task_and_skips_the_other(path, ran, skipped):
    run = branch_dag().test(logical_date=LOGICAL_DATE, conf={"path": path})

    assert run.state == "success"
    assert states(run) == {"choose": "success", ran: "success", skipped: "skipped",
                           "join": "success"}
    assert run.get_task_instance("choose").xcom_pull(key="return_value") == path


def test_branch_may_follow_several_tasks():
    @task.branch
    def choose():
        return ["a", "b"]

    with DAG("several") as several:
        choose() >> [EmptyOperator(task_id=t) for t in ("a", "b", "c")]

    run = several.test(logical_date=LOGICAL_DATE)

    assert states(run) == {"choose": "success", "a": "success", "b": "success",
                           "c": "skipped"}


def test_branch_returning_an_unknown_task_fails():
    @task.branch
    def choose():
        return "nowhere"

    with DAG("unknown_branch") as unknown:
        choose() >> EmptyOperator(task_id="somewhere")

    run = unknown.test(logical_date=LOGICAL_DATE)

    ti = run.get_task_instance("choose")
    assert run.state == "failed"
    assert ti.state == "failed"
    assert "nowhere" in ti.log
    assert run.get_task_instance("somewhere").state == "upstream_failed"


def short_circuit_dag(**short_circuit_kwargs) -> DAG:
    @task.short_circuit(**short_circuit_kwargs)
    def gate(params=None):
        return params["go"]

    with DAG("gated", params={"go": True}) as built:
        # A chain of all_done tasks after "work": each of them must still be skipped.
        reports = [EmptyOperator(task_id=f"report_{i}", trigger_rule="all_done")
                   for i in range(3)]
        chain(gate(), EmptyOperator(task_id="work"), *reports)
    return built


def test_short_circuit_truthy_lets_downstream_run():
    run = short_circuit_dag().test(logical_date=LOGICAL_DATE, conf={"go": True})

    assert run.state == "success"
    assert states(run) == {"gate": "success", "work": "success", "report_0": "success",
                           "report_1": "success", "report_2": "success"}


def test_short_circuit_falsy_skips_everything_downstream():
    run = short_circuit_dag().test(logical_date=LOGICAL_DATE, conf={"go": False})

    assert run.state == "success"
    # Airflow's default (ignore_downstream_trigger_rules=True): every downstream task is
    # skipped, whatever its trigger rule.
    assert states(run) == {"gate": "success", "work": "skipped", "report_0": "skipped",
                           "report_1": "skipped", "report_2": "skipped"}


def test_short_circuit_can_respect_downstream_trigger_rules():
    built = short_circuit_dag(ignore_downstream_trigger_rules=False)

    run = built.test(logical_date=LOGICAL_DATE, conf={"go": 0})

    assert states(run) == {"gate": "success", "work": "skipped", "report_0": "success",
                           "report_1": "success", "report_2": "success"}
