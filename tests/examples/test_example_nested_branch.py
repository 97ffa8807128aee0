"""Port of Airflow's nested-branch example: a branch inside one arm of another branch.

outer_branch -> true_1 -> inner_branch -> true_2 -> join_2 -> join_1
                                        -> false_2 -> false_3 -> join_2
             -> false_1 -> join_1

Both joins use ``none_failed_min_one_success`` so they run after whichever arm ran.
"""

from __future__ import annotations

import pytest

from mlpipe import DAG, task
from mlpipe.operators import EmptyOperator

JOIN_RULE = "none_failed_min_one_success"


@task.branch
def pick(which, params=None):
    return params[which]


def nested_branch_dag() -> DAG:
    with DAG("nested_branch", params={"outer": "true_1", "inner": "true_2"}) as built:
        outer = pick.override(task_id="outer_branch")("outer")
        inner = pick.override(task_id="inner_branch")("inner")
        true_1, false_1, true_2, false_2, false_3 = (
            EmptyOperator(task_id=t) for t in ("true_1", "false_1", "true_2", "false_2",
                                               "false_3"))
        join_1 = EmptyOperator(task_id="join_1", trigger_rule=JOIN_RULE)
        join_2 = EmptyOperator(task_id="join_2", trigger_rule=JOIN_RULE)

        outer >> true_1 >> inner >> true_2 >> join_2 >> join_1
        inner >> false_2 >> false_3 >> join_2
        outer >> false_1 >> join_1
    return built


@pytest.mark.parametrize(
    ("conf", "ran", "skipped"),
    [
        ({"outer": "true_1", "inner": "true_2"},
         {"true_1", "inner_branch", "true_2", "join_2"},
         {"false_1", "false_2", "false_3"}),
        ({"outer": "true_1", "inner": "false_2"},
         {"true_1", "inner_branch", "false_2", "false_3", "join_2"},
         {"false_1", "true_2"}),
        ({"outer": "false_1", "inner": "true_2"},
         {"false_1"},
         {"true_1", "inner_branch", "true_2", "false_2", "false_3", "join_2"}),
    ],
    ids=["true_1-true_2", "true_1-false_2", "false_1"],
)
def test_nested_branches_run_only_the_chosen_arms(conf, ran, skipped):
    run = nested_branch_dag().test(logical_date="2024-03-05", conf=conf)

    states = {ti.task_id: ti.state for ti in run.task_instances}
    assert run.state == "success"
    assert {t for t, s in states.items() if s == "success"} == ran | {"outer_branch", "join_1"}
    assert {t for t, s in states.items() if s == "skipped"} == skipped
    assert run.get_task_instance("outer_branch").xcom_pull(key="return_value") == conf["outer"]
