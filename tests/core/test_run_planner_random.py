"""``RunPlanner`` against a from-scratch oracle on random small DAGs.

The planner keeps running tallies and decides as early as a rule allows; the oracle walks
the DAG in topological order and applies ``decide`` to each task's final upstream states.
The two must agree whatever order the engine reports instances in. They can only be
compared for rules whose early decision never differs from the one on full information,
so ``all_success`` (a skip decides SKIP early, a failure arriving after would make it
UPSTREAM_FAILED) is given only to tasks with one upstream task that is never skipped
in part. Seeds are fixed: each case is the same on every run.
"""

from __future__ import annotations

import random

import pytest
from planner_support import OK, F, K, add, empty

from mlpipe import DAG
from mlpipe.core.planning import RunPlanner
from mlpipe.core.states import TaskInstanceState as S
from mlpipe.core.trigger_rule import Decision, TriggerRule, UpstreamTally, decide

#: rules whose early decision always matches the decision on every upstream's final state
ORDER_FREE = ["all_failed", "all_done", "all_skipped", "one_success", "one_failed", "one_done",
              "none_failed", "none_failed_min_one_success", "none_skipped", "always"]


class Case:
    """A random DAG of static and literal-mapped tasks, with each try's outcome fixed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        size = rng.randint(2, 8)
        self.ups: dict[str, list[str]] = {f"t{i}": [] for i in range(size)}
        for j in range(size):
            for i in range(j):
                if rng.random() < 0.35:
                    self.ups[f"t{j}"].append(f"t{i}")
        self.width = {t: rng.choice([None, None, 0, 1, 3]) for t in self.ups}  # None: static
        self.rule = {t: rng.choice(ORDER_FREE + ["all_success"] * 3) if len(up) == 1
                     else rng.choice(ORDER_FREE) for t, up in self.ups.items()}
        self.outcome = {(t, i): rng.choice([OK, OK, F]) for t in self.ups for i in range(-1, 3)}
        with DAG(f"random_{seed}") as self.dag:
            made = {}
            for t, up in self.ups.items():
                if self.width[t] is None:
                    made[t] = empty(t, trigger_rule=self.rule[t])
                else:
                    values = list(range(self.width[t] or 0))
                    made[t] = add.override(task_id=t, trigger_rule=self.rule[t]).expand(
                        x=values).operator
                for u in up:
                    made[u] >> made[t]  # type: ignore[operator]

    def oracle(self) -> dict[str, dict[int, S]]:
        """Final states by task and map index, deciding each task on full upstream states."""
        states: dict[str, dict[int, S]] = {}
        for t, up in self.ups.items():
            tally = UpstreamTally(expected=sum(len(states[u]) for u in up))
            for u in up:
                for state in states[u].values():
                    tally.add(state)
            decision = decide(TriggerRule(self.rule[t]), tally)
            if decision is not Decision.RUN:
                states[t] = {-1: S(decision.value)}
            elif self.width[t] is None:
                states[t] = {-1: self.outcome[(t, -1)]}
            elif self.width[t] == 0:
                states[t] = {-1: K}
            else:
                states[t] = {i: self.outcome[(t, i)] for i in range(self.width[t] or 0)}
        return states

    def play(self) -> tuple[RunPlanner, list[tuple[str, int]]]:
        """Drive the planner, finishing ready instances in a random order."""
        planner = RunPlanner(self.dag)
        pending, ran = list(planner.start()), []
        while pending:
            action = pending.pop(self.rng.randrange(len(pending)))
            if action.kind == "expand_task":
                pending += planner.expanded_task(action.task_id, self.width[action.task_id] or 0)
                continue
            assert action.kind == "run", action
            ran.append((action.task_id, action.map_index))
            outcome = self.outcome[(action.task_id, action.map_index)]
            pending += planner.finished(action.task_id, action.map_index, outcome)
        return planner, ran


@pytest.mark.parametrize("seed", range(200))
def test_planner_agrees_with_deciding_on_final_states(seed: int) -> None:
    case = Case(seed)
    expected = case.oracle()

    planner, ran = case.play()

    assert {t: dict(planner.states(t)) for t in case.ups} == expected
    # every instance that ran ended success or failed, and only a run ends so
    assert sorted(ran) == sorted((t, i) for t, by_index in expected.items()
                                 for i, state in by_index.items() if state in (OK, F))
    assert planner.complete is True
    assert len(planner.finished_states) == sum(len(s) for s in expected.values())
