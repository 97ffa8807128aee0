"""``RunPlanner`` on its own: tiny DAGs in, exact actions and decided states out.

No store and no executor: each test plays the engine by hand, telling the planner what
finished (``finished``) and what a branch skipped (``skip``), and checks what comes back.
Sibling tasks come out in set order (``downstream_task_ids`` is a set), so where several
siblings become ready at once the test compares them sorted; everything else is in order.
Mapped tasks, mapped groups and resuming: test_run_planner_mapping.py.
"""

from __future__ import annotations

import pytest
from planner_support import OK, UF, F, K, empty, ordered, run

from mlpipe import DAG, chain
from mlpipe.core.planning import RunPlanner
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.errors import MlpipeError

# -- a chain and a diamond ---------------------------------------------------------------------


def test_chain_releases_one_task_at_a_time(chain3: DAG) -> None:
    planner = RunPlanner(chain3)

    assert planner.start() == [run("a")]
    assert planner.finished("a", -1, S.SUCCESS) == [run("b")]
    assert planner.finished("b", -1, S.SUCCESS) == [run("c")]
    assert planner.finished("c", -1, S.SUCCESS) == []
    assert planner.finished_states == [
        ("a", -1, S.SUCCESS), ("b", -1, S.SUCCESS), ("c", -1, S.SUCCESS)]


def test_complete_only_once_every_instance_has_finished(chain3: DAG) -> None:
    planner = RunPlanner(chain3)
    planner.start()
    planner.finished("a", -1, S.SUCCESS)
    planner.finished("b", -1, S.SUCCESS)

    assert planner.complete is False
    assert planner.undecided_task_ids() == ["c"]
    planner.finished("c", -1, S.SUCCESS)
    assert planner.complete is True
    assert planner.undecided_task_ids() == []


def test_all_roots_start_together() -> None:
    with DAG("roots") as built:
        empty("x") >> empty("z")  # type: ignore[operator]
        empty("y")

    assert RunPlanner(built).start() == [run("x"), run("y")]


def test_siblings_released_together_come_in_definition_order() -> None:
    with DAG("fan") as built:
        root = empty("root")
        root >> [empty("zeta"), empty("alpha"), empty("mid")]  # type: ignore[operator]
    planner = RunPlanner(built)
    planner.start()

    # the same order in every process, whatever PYTHONHASHSEED is
    assert planner.finished("root", -1, OK) == [run("zeta"), run("alpha"), run("mid")]


def test_fan_out_then_fan_in_waits_for_every_branch(diamond: DAG) -> None:
    planner = RunPlanner(diamond)

    assert planner.start() == [run("start")]
    assert ordered(planner.finished("start", -1, S.SUCCESS)) == [run("left"), run("right")]
    assert planner.finished("left", -1, S.SUCCESS) == []
    assert planner.finished("right", -1, S.SUCCESS) == [run("end")]


def test_a_finished_instance_reported_twice_counts_once(diamond: DAG) -> None:
    planner = RunPlanner(diamond)
    planner.start()
    planner.finished("start", -1, S.SUCCESS)
    planner.finished("left", -1, S.SUCCESS)

    assert planner.finished("left", -1, S.SUCCESS) == []
    assert planner.finished_states == [("start", -1, S.SUCCESS), ("left", -1, S.SUCCESS)]


# -- failures and trigger rules ----------------------------------------------------------------


def test_a_failure_marks_everything_below_upstream_failed_at_once() -> None:
    with DAG("fail") as built:
        chain(empty("a"), empty("b"), empty("c"), empty("d"))
    planner = RunPlanner(built)
    planner.start()

    assert planner.finished("a", -1, S.FAILED) == []
    assert planner.finished_states == [("a", -1, S.FAILED), ("b", -1, S.UPSTREAM_FAILED),
                                       ("c", -1, S.UPSTREAM_FAILED),
                                       ("d", -1, S.UPSTREAM_FAILED)]
    assert planner.complete is True


def test_a_failure_decides_all_success_before_the_other_upstream_ends(diamond: DAG) -> None:
    planner = RunPlanner(diamond)
    planner.start()
    planner.finished("start", -1, S.SUCCESS)

    planner.finished("left", -1, S.FAILED)

    assert planner.states("end") == {-1: S.UPSTREAM_FAILED}
    assert planner.complete is False  # right is still running
    assert planner.finished("right", -1, S.SUCCESS) == []
    assert planner.complete is True


def _join(rule: str) -> DAG:
    """``[a, b] >> join(trigger_rule=rule) >> after``."""
    with DAG(f"join_{rule}") as built:
        [empty("a"), empty("b")] >> empty("join", trigger_rule=rule) >> empty("after")  # type: ignore[operator]
    return built

# (rule, how a and b end, what join becomes: "run" or the state the planner decides)
RULE_CASES = [
    ("all_success", OK, OK, "run"),
    ("all_success", OK, F, UF),
    ("all_success", OK, K, K),
    ("all_failed", F, F, "run"),
    ("all_failed", F, UF, "run"),
    ("all_failed", F, OK, K),
    ("all_done", OK, F, "run"),
    ("all_done", K, K, "run"),
    ("all_skipped", K, K, "run"),
    ("all_skipped", K, OK, K),
    ("one_success", F, OK, "run"),
    ("one_success", K, K, K),
    ("one_success", F, K, UF),
    ("one_failed", OK, F, "run"),
    ("one_failed", OK, OK, K),
    ("one_done", K, F, "run"),
    ("one_done", K, K, K),
    ("none_failed", OK, K, "run"),
    ("none_failed", OK, F, UF),
    ("none_failed_min_one_success", OK, K, "run"),
    ("none_failed_min_one_success", K, K, K),
    ("none_failed_min_one_success", K, F, UF),
    ("none_skipped", OK, F, "run"),
    ("none_skipped", OK, K, K),
    ("always", F, F, "run"),
]


@pytest.mark.parametrize(("rule", "state_a", "state_b", "outcome"), RULE_CASES)
def test_trigger_rule_after_both_upstreams_end(rule: str, state_a: S, state_b: S,
                                               outcome: str | S) -> None:
    planner = RunPlanner(_join(rule))
    started = planner.start()
    actions = planner.finished("a", -1, state_a) + planner.finished("b", -1, state_b)

    join_runs = [a for a in started + actions if a.task_id == "join"]
    if outcome == "run":
        assert join_runs == [run("join")]
        assert planner.states("join") == {}
    else:
        assert join_runs == []
        assert planner.states("join") == {-1: outcome}
        # all_success below it follows: skipped stays skipped, a failure fails upstream
        assert planner.states("after") == {-1: K if outcome is K else UF}
        assert planner.complete is True


@pytest.mark.parametrize(("rule", "state_a"), [
    ("one_success", OK), ("one_failed", F), ("one_done", F), ("one_done", OK)])
def test_one_rules_run_on_the_first_matching_upstream(rule: str, state_a: S) -> None:
    planner = RunPlanner(_join(rule))
    planner.start()

    assert planner.finished("a", -1, state_a) == [run("join")]


@pytest.mark.parametrize(("rule", "state_a", "decided"), [
    ("all_success", F, UF), ("all_success", K, K), ("all_failed", OK, K),
    ("none_failed", F, UF), ("none_skipped", K, K), ("all_skipped", OK, K)])
def test_rules_decide_early_when_one_upstream_settles_it(rule: str, state_a: S,
                                                         decided: S) -> None:
    planner = RunPlanner(_join(rule))
    planner.start()

    assert planner.finished("a", -1, state_a) == []
    assert planner.states("join") == {-1: decided}
    assert planner.finished("b", -1, OK) == []  # already decided: b changes nothing
    assert planner.states("join") == {-1: decided}


@pytest.mark.parametrize("rule", ["all_done", "none_failed_min_one_success", "one_success"])
def test_rules_that_need_every_upstream_wait_for_the_last(rule: str) -> None:
    planner = RunPlanner(_join(rule))
    planner.start()

    assert planner.finished("a", -1, K) == []
    assert planner.states("join") == {}
    assert planner.undecided_task_ids() == ["b", "join", "after"]


def test_always_runs_at_start_with_its_upstreams() -> None:
    planner = RunPlanner(_join("always"))

    assert planner.start() == [run("a"), run("b"), run("join")]
    assert planner.finished("join", -1, OK) == [run("after")]  # a and b still running
    assert planner.finished("a", -1, F) == []
    assert planner.finished("b", -1, F) == []
    assert planner.states("join") == {-1: OK}


# -- skips from branches and short-circuits ----------------------------------------------------


@pytest.fixture
def branchy() -> DAG:
    """``branch >> [x, y]; x >> x2; y >> y2; [x2, y2] >> join (none_failed_min_one_success)``."""
    with DAG("branchy") as built:
        branch, x, x2 = empty("branch"), empty("x"), empty("x2")
        y, y2 = empty("y"), empty("y2")
        join = empty("join", trigger_rule="none_failed_min_one_success")
        branch >> [x, y]  # type: ignore[operator]
        x >> x2 >> join  # type: ignore[operator]
        y >> y2 >> join  # type: ignore[operator]
    return built


def test_branch_skip_propagates_down_the_branch_not_taken(branchy: DAG) -> None:
    planner = RunPlanner(branchy)
    planner.start()

    assert planner.skip("branch", -1, ["y"]) == []
    assert planner.finished_states == [("y", -1, K), ("y2", -1, K)]
    assert planner.finished("branch", -1, OK) == [run("x")]
    assert planner.finished("x", -1, OK) == [run("x2")]
    assert planner.finished("x2", -1, OK) == [run("join")]


def test_branch_skipping_every_path_skips_the_join(branchy: DAG) -> None:
    planner = RunPlanner(branchy)
    planner.start()

    planner.skip("branch", -1, ["x", "y"])

    assert planner.finished("branch", -1, OK) == []
    assert planner.states("join") == {-1: K}
    assert planner.complete is True


def test_skip_decides_every_target_before_any_skip_propagates() -> None:
    # short-circuit with ignore_trigger_rules: sc skips a and its all_done child b;
    # b must not be released to run by a's skip.
    with DAG("sc") as built:
        empty("sc") >> empty("a") >> empty("b", trigger_rule="all_done")  # type: ignore[operator]
    planner = RunPlanner(built)
    planner.start()

    assert planner.skip("sc", -1, ["a", "b"]) == []
    assert planner.finished_states == [("a", -1, K), ("b", -1, K)]


def test_short_circuit_of_direct_downstream_leaves_all_done_below_to_run() -> None:
    with DAG("sc2") as built:
        empty("sc") >> empty("a") >> empty("b", trigger_rule="all_done")  # type: ignore[operator]
    planner = RunPlanner(built)
    planner.start()

    assert planner.skip("sc", -1, ["a"]) == [run("b")]


def test_skipping_a_task_already_decided_changes_nothing(chain3: DAG) -> None:
    planner = RunPlanner(chain3)
    planner.start()
    planner.finished("a", -1, OK)  # b is now released to run

    assert planner.skip("a", -1, ["b"]) == []
    assert planner.finished_states == [("a", -1, OK)]


def test_a_long_skip_chain_propagates_without_recursion() -> None:
    length = 1500
    with DAG("long") as built:
        chain(*[empty(f"t{i}") for i in range(length)])
    planner = RunPlanner(built)
    planner.start()

    assert planner.skip("t0", -1, ["t1"]) == []
    assert len(planner.finished_states) == length - 1
    assert planner.finished_states[-1] == (f"t{length - 1}", -1, K)


# -- retries: a try that will be retried is not finished ---------------------------------------


def test_an_instance_up_for_retry_is_not_reported_and_holds_its_downstream() -> None:
    # The engine reports only final states; between tries the planner still waits on b.
    with DAG("retry") as built:
        chain(empty("a", retries=2), empty("b"))
    planner = RunPlanner(built)
    planner.start()

    assert planner.undecided_task_ids() == ["a", "b"]
    assert planner.complete is False
    assert planner.finished("a", -1, OK) == [run("b")]  # the last try's outcome


# -- misuse ---------------------------------------------------------------------------------


def test_finished_refuses_a_state_that_is_not_final(chain3: DAG) -> None:
    planner = RunPlanner(chain3)
    planner.start()

    with pytest.raises(MlpipeError, match="up_for_retry"):
        planner.finished("a", -1, S.UP_FOR_RETRY)
