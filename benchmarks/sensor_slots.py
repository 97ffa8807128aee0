"""Sensors on a full executor: what ``mode="reschedule"`` gives back while sensors wait.

One slot (the local executor, parallelism 1) and one DAG: ``--sensors`` sensors that wait
``--wait`` seconds (``TimeDeltaSensor`` past the run's start, poking every 0.2 s, run first
by priority) and ``--tasks`` ordinary tasks of ``--task-s`` seconds each. Measured from the
run's start, read from the store: when the last ordinary task finished, and when the run
ended, in ``reschedule`` mode against the same DAG in ``poke`` mode (the baseline: a poking
sensor holds the only slot while it sleeps). Also the scheduler's queueings per sensor
against the pokes the interval allows (the "no more than once per poke_interval" rule).
Usage: ``python benchmarks/sensor_slots.py [--sensors 4] [--wait 3] [--tasks 4]
[--task-s 0.3] [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

POKE_INTERVAL = 0.2
DAG_FILE = """
import time
from datetime import timedelta
from mlpipe import DAG
from mlpipe.operators import PythonOperator
from mlpipe.sensors import TimeDeltaSensor

with DAG("slots", schedule=None, max_active_tasks=64) as dag:
    for i in range({sensors}):
        TimeDeltaSensor(f"sensor_{{i}}", delta=timedelta(seconds={wait}),
                        poke_interval={poke}, mode="{mode}", priority_weight=10)
    for i in range({tasks}):
        PythonOperator(f"task_{{i}}", python_callable=lambda: time.sleep({task_s}))
"""


def one_run(tmp: Path, mode: str, args: argparse.Namespace) -> dict[str, float]:
    """Seconds from the run's start to its last ordinary task's end and to its own end."""
    folder = tmp / mode
    folder.mkdir()
    (folder / "slots.py").write_text(DAG_FILE.format(
        sensors=args.sensors, wait=args.wait, tasks=args.tasks, task_s=args.task_s,
        poke=POKE_INTERVAL, mode=mode))
    engine = Engine.from_settings(load_settings(home=tmp / f"home_{mode}", dags_folder=folder,
                                                executor="local", parallelism=1))
    try:
        run = engine.trigger(engine.get_dag("slots"))
        done = lambda s: s.store.get_run("slots", run.run_id).state in ("success", "failed")  # noqa: E731
        Scheduler(engine, scan_interval=0.5, lease=timedelta(seconds=30)).run(until=done)
        record = engine.store.get_run("slots", run.run_id)
        assert record.state == "success", [(t.task_id, t.state, t.error) for t in
                                           engine.store.list_tis("slots", run.run_id)]
        assert record.start_date is not None and record.end_date is not None
        tis = engine.store.list_tis("slots", run.run_id)
        tasks_done = max(t.end_date for t in tis if t.task_id.startswith("task_") and t.end_date)
        queued = [m for m in engine.store.transitions("slots", run.run_id)
                  if m.task_id.startswith("sensor_") and m.to_state == "queued"]
        return {"tasks_s": (tasks_done - record.start_date).total_seconds(),
                "run_s": (record.end_date - record.start_date).total_seconds(),
                "queued_per_sensor": len(queued) / args.sensors}
    finally:
        engine.store.dispose()


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sensors", type=int, default=4)
    parser.add_argument("--wait", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--task-s", type=float, default=0.3)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.sensors, args.wait, args.tasks, args.task_s = 2, 1.0, 2, 0.1
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        poke = one_run(tmp, "poke", args)
        resched = one_run(tmp, "reschedule", args)
    workload = (f"{args.sensors} sensors waiting {args.wait:g} s + {args.tasks} tasks, "
                "1 slot")
    allowed = args.wait / POKE_INTERVAL + 1  # pokes the interval allows over the wait
    figures = [
        Figure(workload, "ordinary tasks done", "s", resched["tasks_s"], poke["tasks_s"],
               "poke mode"),
        Figure(workload, "run done", "s", resched["run_s"], poke["run_s"], "poke mode"),
        Figure(workload, "queueings per sensor", "count", resched["queued_per_sensor"],
               allowed, "wait / poke_interval + 1", target="<= baseline"),
    ]
    emit("sensor_slots", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
