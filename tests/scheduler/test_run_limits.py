"""max_active_tasks, depends_on_past and dagrun_timeout, as the store records them."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings


def engine_for(tmp_path: Path, body: str, **settings: object) -> Engine:
    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "limits.py").write_text(textwrap.dedent(body))
    return Engine.from_settings(load_settings(dags_folder=folder, **settings))


def overlaps(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


@pytest.mark.timeout(60)
def test_max_active_tasks_caps_parallel_instances(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, """
        import time
        from mlpipe import DAG, task
        with DAG("capped", max_active_tasks=2) as dag:
            @task
            def nap(i):
                time.sleep(0.3)
                return i
            for i in range(5):
                nap.override(task_id=f"nap_{i}")(i)
    """, executor="local", parallelism=4)
    dag = engine.get_dag("capped")
    engine.trigger(dag, run_id="r1")
    run = engine.run(dag, "r1")
    assert run.state == "success"
    spans = [(ti.start_date.timestamp(), ti.end_date.timestamp()) for ti in run.task_instances
             if ti.start_date and ti.end_date]
    assert len(spans) == 5
    assert overlaps(spans) == 2


def test_depends_on_past_waits_for_the_previous_run(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, """
        from mlpipe import DAG, task
        from datetime import datetime
        with DAG("pastdep", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
            @task(depends_on_past=True)
            def step(params=None):
                from pathlib import Path
                if Path(params["flag"]).exists():
                    raise RuntimeError("asked to fail")
                return 1
            step()
    """)
    dag = engine.get_dag("pastdep")
    flag = tmp_path / "fail"
    flag.touch()
    conf = {"flag": str(flag)}
    engine.trigger(dag, run_id="first", logical_date="2024-01-01", conf=conf)
    assert engine.run(dag, "first").state == "failed"
    engine.trigger(dag, run_id="second", logical_date="2024-01-02", conf={"flag": "/nonexistent"})
    driver_run = engine.store.get_run("pastdep", "second")
    assert driver_run.state == "queued"

    from mlpipe.scheduler.dagrun_driver import DagRunDriver

    executor = engine.make_executor("sequential")
    driver = DagRunDriver(engine.store, dag, "second", executor)
    driver.start()
    for _ in range(3):
        driver.step()
    ti = engine.store.list_tis("pastdep", "second")[0]
    assert ti.state == "none"  # waits: the same task failed in the previous run
    assert not driver.done

    flag.unlink()
    engine.clear(dag, run_id="first")
    assert engine.run(dag, "first").state == "success"
    driver.step()
    for event in executor.poll(0):
        driver.on_event(event)
    driver.step()
    assert driver.done
    assert driver.finish().state == "success"


@pytest.mark.timeout(60)
def test_dagrun_timeout_fails_the_run_and_stops_its_tasks(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, """
        import time
        from datetime import timedelta
        from mlpipe import DAG, task
        with DAG("slowrun", dagrun_timeout=timedelta(seconds=1)) as dag:
            @task
            def slow():
                time.sleep(30)
            @task
            def after():
                return 1
            slow() >> after()
    """, executor="local", task_lease_s=0.6)
    dag = engine.get_dag("slowrun")
    engine.trigger(dag, run_id="r1")
    run = engine.run(dag, "r1")
    states = {ti.task_id: ti.state for ti in run.task_instances}
    assert run.state == "failed"
    assert states == {"slow": "failed", "after": "skipped"}
    slow = run.get_task_instance("slow")
    assert slow is not None and slow.error == "dagrun_timeout 0:00:01 exceeded"
    assert run.end_date - run.start_date < timedelta(seconds=15)
