"""``RunPlanner`` with dynamic task mapping: expansion of mapped tasks and mapped groups,
and resuming a run by replaying the states an earlier driver recorded.

As in test_run_planner.py the test plays the engine: ``expanded_task``/``expanded_group``
say how long a mapped input turned out to be, ``expansion_failed`` that it could not be read.
"""

from __future__ import annotations

from planner_support import OK, UF, F, K, add, empty, numbers, run

from mlpipe import DAG, task_group
from mlpipe.core.planning import Action, RunPlanner
from mlpipe.core.states import TaskInstanceState as S

# -- mapped tasks --------------------------------------------------------------------------------


def test_a_mapped_task_is_expanded_once_its_input_is_ready(mapped: DAG) -> None:
    planner = RunPlanner(mapped)

    assert planner.start() == [run("numbers")]
    assert planner.count("add") is None
    assert planner.finished("numbers", -1, OK) == [Action("expand_task", "add")]
    assert planner.expanded_task("add", 3) == [run("add", 0), run("add", 1), run("add", 2)]
    assert planner.count("add") == 3


def test_the_reducer_waits_for_every_mapped_instance(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()
    planner.finished("numbers", -1, OK)
    planner.expanded_task("add", 3)

    assert planner.finished("add", 2, OK) == []
    assert planner.finished("add", 0, OK) == []
    assert planner.states("add") == {2: OK, 0: OK}
    assert planner.finished("add", 1, OK) == [run("total")]
    assert planner.finished("total", -1, OK) == []
    assert planner.complete is True


def test_one_failed_mapped_instance_fails_the_reducer_at_once(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()
    planner.finished("numbers", -1, OK)
    planner.expanded_task("add", 3)

    assert planner.finished("add", 1, F) == []
    assert planner.states("total") == {-1: UF}
    assert planner.complete is False  # add 0 and 2 are still running
    planner.finished("add", 0, OK)
    planner.finished("add", 2, OK)
    assert planner.complete is True


def test_a_mapped_task_over_an_empty_list_is_skipped_and_so_is_below(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()
    planner.finished("numbers", -1, OK)

    assert planner.expanded_task("add", 0) == []
    assert planner.finished_states == [("numbers", -1, OK), ("add", -1, K), ("total", -1, K)]
    assert planner.count("add") == 1  # the one skipped placeholder instance
    assert planner.complete is True


def test_a_mapped_task_whose_input_cannot_be_resolved_fails(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()
    planner.finished("numbers", -1, OK)

    assert planner.expansion_failed(task_id="add") == []
    assert planner.finished_states == [("numbers", -1, OK), ("add", -1, F), ("total", -1, UF)]
    assert planner.complete is True


def test_a_mapped_task_whose_input_task_failed_is_upstream_failed(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()

    assert planner.finished("numbers", -1, F) == []
    assert planner.finished_states == [("numbers", -1, F), ("add", -1, UF), ("total", -1, UF)]
    assert planner.complete is True


def test_a_mapped_task_over_a_literal_list_is_expanded_at_start() -> None:
    with DAG("literal") as built:
        add.expand(x=[1, 2])

    planner = RunPlanner(built)
    assert planner.start() == [Action("expand_task", "add")]
    assert planner.expanded_task("add", 2) == [run("add", 0), run("add", 1)]


# -- mapped task groups --------------------------------------------------------------------------


def _group_dag(over: object) -> DAG:
    """``per_item.expand(x=over)`` with ``first >> second`` inside, then ``after``."""
    with DAG("grouped") as built:
        @task_group
        def per_item(x: int) -> None:
            add.override(task_id="second")(add.override(task_id="first")(x, 1), 2)

        source = numbers() if over is numbers else over
        per_item.expand(x=source) >> empty("after")  # type: ignore[operator]
    return built


def test_a_literal_mapped_group_is_expanded_at_start() -> None:
    planner = RunPlanner(_group_dag([1, 2]))

    assert planner.start() == [Action("expand_group", group_id="per_item")]
    assert planner.group_count("per_item") is None
    assert planner.expanded_group("per_item", 2) == [run("per_item.first", 0),
                                                     run("per_item.first", 1)]
    assert planner.group_count("per_item") == 2
    assert planner.count("per_item.second") == 2


def test_group_instances_pair_up_by_map_index() -> None:
    planner = RunPlanner(_group_dag([1, 2]))
    planner.start()
    planner.expanded_group("per_item", 2)

    assert planner.is_same_group("per_item.first", "per_item.second") is True
    assert planner.finished("per_item.first", 1, OK) == [run("per_item.second", 1)]
    assert planner.finished("per_item.first", 0, F) == []
    assert planner.states("per_item.second") == {0: UF}
    assert planner.finished("per_item.second", 1, OK) == []
    # after (all_success) sees second's instance 0 upstream_failed
    assert planner.states("after") == {-1: UF}
    assert planner.complete is True


def test_the_task_after_a_group_waits_for_every_instance_of_its_leaves() -> None:
    planner = RunPlanner(_group_dag([1, 2]))
    planner.start()
    planner.expanded_group("per_item", 2)
    for i in (0, 1):
        planner.finished("per_item.first", i, OK)

    assert planner.is_same_group("per_item.second", "after") is False
    assert planner.finished("per_item.second", 0, OK) == []
    assert planner.finished("per_item.second", 1, OK) == [run("after")]


def test_a_group_over_an_upstream_output_expands_when_it_succeeds() -> None:
    planner = RunPlanner(_group_dag(numbers))

    assert planner.start() == [run("numbers")]
    assert planner.finished("numbers", -1, OK) == [Action("expand_group", group_id="per_item")]
    assert planner.expanded_group("per_item", 1) == [run("per_item.first", 0)]


def test_a_group_whose_input_task_failed_is_upstream_failed() -> None:
    planner = RunPlanner(_group_dag(numbers))
    planner.start()

    assert planner.finished("numbers", -1, F) == []
    assert planner.group_count("per_item") == 0
    assert planner.finished_states == [
        ("numbers", -1, F), ("per_item.first", -1, UF), ("per_item.second", -1, UF),
        ("after", -1, UF)]
    assert planner.complete is True


def test_a_group_over_an_empty_list_skips_its_tasks_and_below() -> None:
    planner = RunPlanner(_group_dag([1]))
    planner.start()

    assert planner.expanded_group("per_item", 0) == []
    assert planner.finished_states == [
        ("per_item.first", -1, K), ("per_item.second", -1, K), ("after", -1, K)]
    assert planner.complete is True


def test_a_group_whose_input_cannot_be_resolved_is_upstream_failed() -> None:
    planner = RunPlanner(_group_dag([1]))
    planner.start()

    assert planner.expansion_failed(group_id="per_item") == []
    assert planner.finished_states == [
        ("per_item.first", -1, UF), ("per_item.second", -1, UF), ("after", -1, UF)]
    assert planner.complete is True


def test_a_branch_inside_a_group_skips_only_its_own_instance() -> None:
    planner = RunPlanner(_group_dag([1, 2]))
    planner.start()
    planner.expanded_group("per_item", 2)

    assert planner.skip("per_item.first", 1, ["per_item.second"]) == []
    assert planner.states("per_item.second") == {1: K}
    assert planner.finished("per_item.first", 0, OK) == [run("per_item.second", 0)]


# -- resuming a run whose instances partly finished earlier ---------------------------------------


def resume(planner: RunPlanner, stored: dict[tuple[str, int], S],
           counts: dict[str, int] | None = None) -> list[Action]:
    """Start, replaying ``stored`` outcomes as the driver does; return what still must run."""
    pending, to_run = list(planner.start()), []
    while pending:
        action = pending.pop(0)
        if action.kind == "expand_task":
            pending += planner.expanded_task(action.task_id, (counts or {})[action.task_id])
        elif (action.task_id, action.map_index) in stored:
            state = stored[(action.task_id, action.map_index)]
            pending += planner.finished(action.task_id, action.map_index, state)
        else:
            to_run.append(action)
    return to_run


def test_resume_runs_only_what_had_not_finished(chain3: DAG) -> None:
    planner = RunPlanner(chain3)

    assert resume(planner, {("a", -1): OK}) == [run("b")]
    assert planner.finished_states == [("a", -1, OK)]


def test_resume_after_a_failure_decides_the_rest_without_running_anything(chain3: DAG) -> None:
    planner = RunPlanner(chain3)

    assert resume(planner, {("a", -1): OK, ("b", -1): F}) == []
    assert planner.finished_states == [("a", -1, OK), ("b", -1, F), ("c", -1, UF)]
    assert planner.complete is True


def test_resume_of_a_mapped_task_reruns_only_its_unfinished_instances(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    stored = {("numbers", -1): OK, ("add", 0): OK, ("add", 2): OK}

    assert resume(planner, stored, counts={"add": 3}) == [run("add", 1)]
    assert planner.finished("add", 1, OK) == [run("total")]


def test_resume_of_a_finished_run_is_complete_at_once(diamond: DAG) -> None:
    planner = RunPlanner(diamond)
    stored = {(t, -1): OK for t in ("start", "left", "right", "end")}

    assert resume(planner, stored) == []
    assert planner.complete is True


# -- mapping combined with other events -----------------------------------------------------------


def test_a_mapped_task_over_a_mapped_output_expands_after_every_instance() -> None:
    with DAG("twice") as built:
        add.override(task_id="again").expand(x=add.expand(x=numbers()))
    planner = RunPlanner(built)
    planner.start()
    planner.finished("numbers", -1, OK)
    planner.expanded_task("add", 2)

    assert planner.finished("add", 0, OK) == []
    assert planner.finished("add", 1, OK) == [Action("expand_task", "again")]
    assert planner.expanded_task("again", 2) == [run("again", 0), run("again", 1)]


def test_a_skipped_input_task_skips_the_mapped_task_without_expanding_it(mapped: DAG) -> None:
    planner = RunPlanner(mapped)
    planner.start()

    assert planner.finished("numbers", -1, K) == []
    assert planner.finished_states == [("numbers", -1, K), ("add", -1, K), ("total", -1, K)]
    assert planner.count("add") == 1


def test_a_branch_skips_a_mapped_task_before_it_is_expanded() -> None:
    with DAG("branch_mapped") as built:
        branch = empty("branch")
        branch >> add.expand(x=[1, 2])  # type: ignore[operator]
    planner = RunPlanner(built)
    planner.start()

    assert planner.skip("branch", -1, ["add"]) == []
    assert planner.finished("branch", -1, OK) == []
    assert planner.states("add") == {-1: K}
    assert planner.complete is True


def test_an_outside_upstream_failing_after_expansion_fails_every_group_instance() -> None:
    with DAG("outside") as built:
        @task_group
        def per_item(x: int) -> None:
            add.override(task_id="second")(add.override(task_id="first")(x, 1), 2)

        gate = empty("gate")
        gate >> per_item.expand(x=[1, 2])  # type: ignore[operator]
    planner = RunPlanner(built)

    assert planner.start() == [Action("expand_group", group_id="per_item"), run("gate")]
    assert planner.expanded_group("per_item", 2) == []  # first waits for gate
    assert planner.finished("gate", -1, F) == []
    assert planner.states("per_item.first") == {0: UF, 1: UF}
    assert planner.states("per_item.second") == {0: UF, 1: UF}
    assert planner.complete is True


def test_an_outside_upstream_succeeding_after_expansion_releases_every_instance() -> None:
    with DAG("outside_ok") as built:
        @task_group
        def per_item(x: int) -> None:
            add.override(task_id="first")(x, 1)

        empty("gate") >> per_item.expand(x=[1, 2, 3])  # type: ignore[operator]
    planner = RunPlanner(built)
    planner.start()
    planner.expanded_group("per_item", 3)

    assert planner.finished("gate", -1, OK) == [
        run("per_item.first", 0), run("per_item.first", 1), run("per_item.first", 2)]
