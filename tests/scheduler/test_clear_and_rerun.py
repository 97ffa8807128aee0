"""Clearing a failed task re-runs it and its downstream only, in the same DAG run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlpipe.scheduler.service import Engine
from mlpipe.store.entities import TIKey


@pytest.mark.timeout(60)
@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_clear_reruns_the_failed_task_and_its_downstream_only(
        make_engine: Callable[..., Engine], tmp_path: Path, executor: str) -> None:
    engine = make_engine(executor=executor)
    dag = engine.get_dag("clear_rerun")
    journal = tmp_path / "journal.txt"
    engine.trigger(dag, run_id="r1", conf={"marker": str(tmp_path / "b-failed"),
                                           "journal": str(journal)})
    first = engine.run(dag, "r1")
    before = {ti.task_id: ti for ti in first.task_instances}
    assert first.state == "failed"
    assert {t: ti.state.value for t, ti in before.items()} == {
        "a": "success", "b": "failed", "c": "upstream_failed", "d": "success"}
    assert "RuntimeError: b fails the first time" in before["b"].error

    cleared = engine.clear(dag, run_id="r1", task_regex="^b$")

    assert sorted(cleared) == [TIKey("clear_rerun", "r1", "b"), TIKey("clear_rerun", "r1", "c")]
    assert engine.store.get_run("clear_rerun", "r1").state == "queued"
    second = engine.run(dag, "r1")
    after = {ti.task_id: ti for ti in second.task_instances}
    assert second.state == "success"
    assert {ti.state.value for ti in after.values()} == {"success"}
    for untouched in ("a", "d"):
        assert after[untouched].try_number == 1
        assert after[untouched].start_date == before[untouched].start_date
    assert after["b"].try_number == 2
    assert after["c"].try_number == 1
    assert sorted(journal.read_text().splitlines()) == ["a 1", "b 1", "b 2", "c 1", "d 1"]
    claims = [(t.task_id, t.try_number)
              for t in engine.store.transitions("clear_rerun", "r1") if t.to_state == "running"]
    assert sorted(claims) == [("a", 1), ("b", 1), ("b", 2), ("c", 1), ("d", 1)]
    assert "b fails the first time" in after["b"].try_log(1)
    assert "Marking task as SUCCESS" in after["b"].try_log(2)
