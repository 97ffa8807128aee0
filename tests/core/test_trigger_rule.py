"""Trigger rules: the enum, and ``decide`` over every rule and upstream tally."""

from __future__ import annotations

import pytest

from mlpipe import DAG, TriggerRule
from mlpipe.core.states import TaskInstanceState
from mlpipe.core.trigger_rule import Decision, UpstreamTally, decide
from mlpipe.errors import InvalidTriggerRuleError
from mlpipe.operators import EmptyOperator

RUN, WAIT, SKIP, UPSTREAM_FAILED = (
    Decision.RUN, Decision.WAIT, Decision.SKIP, Decision.UPSTREAM_FAILED,
)

SPEC_RULES = {
    "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
    "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always",
}


def tally(expected: int, **finished: int) -> UpstreamTally:
    """An upstream tally of ``expected`` instances, ``finished`` of them in the given states."""
    return UpstreamTally(expected=expected, **finished)


# (rule, tally, decision, why): three upstream instances unless said otherwise.
CASES = [
    # all_success
    ("all_success", tally(3, success=3), RUN, "all succeeded"),
    ("all_success", tally(3, success=2), WAIT, "one still running"),
    ("all_success", tally(3, failed=1), UPSTREAM_FAILED, "early: a failure decides"),
    ("all_success", tally(3, upstream_failed=1, success=2), UPSTREAM_FAILED, "upstream_failed"),
    ("all_success", tally(3, skipped=1), SKIP, "early: a skip decides"),
    ("all_success", tally(3, skipped=1, failed=1), UPSTREAM_FAILED, "failure beats skip"),
    # all_failed
    ("all_failed", tally(3, failed=2, upstream_failed=1), RUN, "all failed"),
    ("all_failed", tally(3, failed=2), WAIT, "one still running"),
    ("all_failed", tally(3, success=1), SKIP, "early: a success decides"),
    ("all_failed", tally(3, skipped=1, failed=2), SKIP, "a skip is not a failure"),
    # all_done
    ("all_done", tally(3, success=1, failed=1, skipped=1), RUN, "everything finished"),
    ("all_done", tally(3, failed=2), WAIT, "one still running"),
    ("all_done", tally(3, upstream_failed=3), RUN, "upstream_failed is finished"),
    # all_skipped
    ("all_skipped", tally(3, skipped=3), RUN, "all skipped"),
    ("all_skipped", tally(3, skipped=2), WAIT, "one still running"),
    ("all_skipped", tally(3, success=1), SKIP, "early: a success decides"),
    ("all_skipped", tally(3, failed=1), SKIP, "early: a failure decides"),
    ("all_skipped", tally(3, upstream_failed=1), SKIP, "upstream_failed is not skipped"),
    # one_success
    ("one_success", tally(3, success=1), RUN, "early: one success is enough"),
    ("one_success", tally(3, failed=2), WAIT, "the last one may still succeed"),
    ("one_success", tally(3, skipped=3), SKIP, "all skipped"),
    ("one_success", tally(3, failed=1, skipped=2), UPSTREAM_FAILED, "done with no success"),
    ("one_success", tally(3, upstream_failed=3), UPSTREAM_FAILED, "all upstream_failed"),
    # one_failed
    ("one_failed", tally(3, failed=1), RUN, "early: one failure is enough"),
    ("one_failed", tally(3, upstream_failed=1), RUN, "upstream_failed counts as failed"),
    ("one_failed", tally(3, success=2), WAIT, "the last one may still fail"),
    ("one_failed", tally(3, success=2, skipped=1), SKIP, "done with no failure"),
    # one_done
    ("one_done", tally(3, success=1), RUN, "early: a success is done"),
    ("one_done", tally(3, failed=1), RUN, "early: a failure is done"),
    ("one_done", tally(3, skipped=2), WAIT, "skips do not count, one still running"),
    ("one_done", tally(3, skipped=2, upstream_failed=1), SKIP, "done with no success/failure"),
    # none_failed
    ("none_failed", tally(3, success=2, skipped=1), RUN, "skips are fine"),
    ("none_failed", tally(3, skipped=3), RUN, "all skipped is fine"),
    ("none_failed", tally(3, success=2), WAIT, "one still running"),
    ("none_failed", tally(3, failed=1), UPSTREAM_FAILED, "early: a failure decides"),
    ("none_failed", tally(3, upstream_failed=1), UPSTREAM_FAILED, "upstream_failed decides"),
    # none_failed_min_one_success
    ("none_failed_min_one_success", tally(3, success=1, skipped=2), RUN, "one success"),
    ("none_failed_min_one_success", tally(3, skipped=3), SKIP, "no success at all"),
    ("none_failed_min_one_success", tally(3, success=2), WAIT, "one still running"),
    ("none_failed_min_one_success", tally(3, failed=1), UPSTREAM_FAILED, "early: a failure"),
    ("none_failed_min_one_success", tally(2, skipped=1, removed=1), SKIP,
     "a removed instance is not a success"),
    # none_skipped
    ("none_skipped", tally(3, success=2, failed=1), RUN, "failures are fine"),
    ("none_skipped", tally(3, success=2), WAIT, "one still running"),
    ("none_skipped", tally(3, skipped=1), SKIP, "early: a skip decides"),
    # always
    ("always", tally(3), RUN, "nothing finished yet"),
    ("always", tally(3, failed=3), RUN, "all failed"),
    ("always", tally(0, unknown=1), RUN, "upstream not even expanded"),
]


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    [pytest.param(rule, t, d, id=f"{rule}-{why}") for rule, t, d, why in CASES],
)
def test_decide(rule: str, upstream: UpstreamTally, expected: Decision) -> None:
    assert decide(TriggerRule(rule), upstream) is expected


def test_every_rule_has_a_decide_case() -> None:
    assert {rule for rule, *_ in CASES} == SPEC_RULES


@pytest.mark.parametrize("rule", sorted(SPEC_RULES))
def test_no_upstream_runs_under_every_rule(rule: str) -> None:
    assert decide(TriggerRule(rule), UpstreamTally()) is RUN


@pytest.mark.parametrize("rule", sorted(SPEC_RULES - {"always"}))
def test_unexpanded_upstream_waits(rule: str) -> None:
    # A mapped upstream that has not expanded yet: nothing can be decided.
    assert decide(TriggerRule(rule), UpstreamTally(unknown=1)) is WAIT


def test_tally_add_counts_each_finished_state() -> None:
    counted = UpstreamTally(expected=6)
    for state in ("success", "success", "skipped", "failed", "upstream_failed", "removed"):
        counted.add(TaskInstanceState(state))

    assert counted == UpstreamTally(
        success=2, skipped=1, failed=1, upstream_failed=1, removed=1, expected=6
    )
    assert counted.done == 6
    assert counted.all_done


def test_tally_plus_sums_fields() -> None:
    left = UpstreamTally(success=1, expected=2, unknown=1)
    right = UpstreamTally(failed=1, skipped=2, expected=3)

    assert left.plus(right) == UpstreamTally(
        success=1, failed=1, skipped=2, expected=5, unknown=1
    )


def test_trigger_rule_has_exactly_the_eleven_spec_values() -> None:
    assert {rule.value for rule in TriggerRule} == SPEC_RULES
    assert len(TriggerRule) == 11


def test_trigger_rule_members_are_strings() -> None:
    assert TriggerRule.ALL_SUCCESS == "all_success"
    assert TriggerRule("none_failed_min_one_success") is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS


def test_default_trigger_rule_is_all_success() -> None:
    with DAG("d"):
        op = EmptyOperator(task_id="op")

    assert op.trigger_rule is TriggerRule.ALL_SUCCESS


def test_trigger_rule_accepts_a_string_or_a_member() -> None:
    with DAG("d"):
        by_name = EmptyOperator(task_id="by_name", trigger_rule="one_failed")
        by_member = EmptyOperator(task_id="by_member", trigger_rule=TriggerRule.ALWAYS)

    assert by_name.trigger_rule is TriggerRule.ONE_FAILED
    assert by_member.trigger_rule is TriggerRule.ALWAYS


def test_unknown_trigger_rule_lists_the_valid_ones() -> None:
    valid = str(sorted(SPEC_RULES)).replace("[", r"\[").replace("]", r"\]")

    with DAG("d"), pytest.raises(
        InvalidTriggerRuleError, match=f"'join'.*'all_sucess'; valid: {valid}"
    ) as caught:
        EmptyOperator(task_id="join", trigger_rule="all_sucess")

    assert "did you mean 'all_success'" in str(caught.value)


def test_unknown_trigger_rule_from_default_args_is_rejected() -> None:
    with DAG("d", default_args={"trigger_rule": "bogus"}), pytest.raises(
        InvalidTriggerRuleError, match=r"'op'.*'bogus'"
    ):
        EmptyOperator(task_id="op")
