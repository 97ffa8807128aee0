"""An in-process driver keeps the XComs its tries write and reads the rest from the store.

With the SequentialExecutor the driver caches XComs (``DagRun.xcom_read_through``); values
written by an earlier driver (before a clear, a restart or by another process) must still
be read from the store, never taken as missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlpipe.scheduler.service import Engine


@pytest.mark.timeout(60)
@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_a_rerun_after_a_clear_reads_the_untouched_upstream_from_the_store(
        make_engine: Callable[..., Engine], tmp_path: Path, executor: str) -> None:
    first_engine = make_engine(executor=executor)
    dag = first_engine.get_dag("xcom_resume")
    first_engine.trigger(dag, run_id="r1", conf={"marker": str(tmp_path / "marker")})
    first = first_engine.run(dag, "r1")
    assert first.state == "failed"
    assert first.get_task_instance("part", 1).state.value == "failed"

    first_engine.clear(dag, run_id="r1", only_failed=True)
    second_engine = make_engine(executor=executor)  # a new process would see only the store
    second = second_engine.run(second_engine.get_dag("xcom_resume"), "r1")

    assert second.state == "success"
    tis = {(ti.task_id, ti.map_index): ti for ti in second.task_instances}
    assert tis[("base", -1)].try_number == 1  # not re-run: its XCom came from the store
    assert [tis[("part", i)].xcom_pull() for i in range(3)] == [10, 20, 30]
    assert tis[("total", -1)].xcom_pull() == 70
    # the run handed back reads the store again
    assert second.xcom_cache is None
