"""The scheduler at scale: 1,000 DAGs x 10 tasks in one folder, nothing due.

Reported, for ``--dags`` DAG files of ``--tasks`` tasks each (every DAG ``@daily`` from a
start date in the future, so no run is due and every tick checks every DAG):
- the first scan of the folder (each file parsed, checked in a child first) and its rate;
- one loop tick (``Scheduler.loop_once`` without the sleep until the next due time), median
  of ``--ticks``: with the folder's stat scan and without (the scan runs every
  ``scan_interval``, 2 s by default); target < 100 ms; the baseline is the same tick over a
  folder of 10 DAGs measured in the same run;
- the scheduler process's resident memory after the scan (VmRSS), against the same process
  before it (the interpreter with mlpipe and the engine imported).
Usage: ``python benchmarks/scheduler_scale.py [--dags 1000] [--tasks 10] [--ticks 21]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAG_FILE = """
from datetime import UTC, datetime, timedelta
from mlpipe import DAG
from mlpipe.operators import EmptyOperator

with DAG("scale_{i:04d}", schedule="@daily", catchup=False,
         start_date=datetime.now(UTC) + timedelta(days=30), tags=["scale"]) as dag:
    previous = None
    for t in range({tasks}):
        current = EmptyOperator(task_id=f"t{{t}}")
        if previous is not None:
            previous >> current
        previous = current
"""
TICK_TARGET_MS = 100.0


class TickProbe(Scheduler):
    """The production loop, minus its sleep: ``loop_once`` returns as soon as its work ends."""

    def _sleep_time(self) -> float:
        return 0.0


def rss_mb() -> float:
    """This process's resident memory (``VmRSS``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scale(tmp: Path, name: str, dags: int, tasks: int, ticks: int) -> dict[str, float]:
    """First scan, ticks with and without the folder scan, memory, for one DAG folder."""
    folder = tmp / name
    folder.mkdir()
    for i in range(dags):
        (folder / f"scale_{i:04d}.py").write_text(DAG_FILE.format(i=i, tasks=tasks))
    engine = Engine.from_settings(load_settings(home=tmp / f"home_{name}", dags_folder=folder,
                                                executor="sequential",
                                                dags_paused_at_creation=False))
    job = TickProbe(engine, scan_interval=3600.0, lease=timedelta(seconds=60))
    before = rss_mb()
    began = time.perf_counter()
    job.loop_once()  # the first tick scans and parses the folder
    first = time.perf_counter() - began
    assert len(job.watcher.bag.dags) == dags, (len(job.watcher.bag.dags), dags)
    after = rss_mb()
    idle = []
    for _ in range(ticks):
        began = time.perf_counter()
        job.loop_once()
        idle.append(time.perf_counter() - began)
    scanning = []
    for _ in range(ticks):
        job._next_scan = 0.0  # due now: this tick stats every file of the folder
        began = time.perf_counter()
        job.loop_once()
        scanning.append(time.perf_counter() - began)
    assert engine.store.list_runs() == [], "nothing should be due"
    job.executor.shutdown()
    return {"first_s": first, "tick_ms": statistics.median(idle) * 1000,
            "scan_tick_ms": statistics.median(scanning) * 1000,
            "rss_before_mb": before, "rss_after_mb": after}


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=21)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.dags, args.ticks = 20, 5
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mlpipe-scale-") as name:
        tmp = Path(name)
        small = scale(tmp, "small", 10, args.tasks, args.ticks)
        large = scale(tmp, "large", args.dags, args.tasks, args.ticks)
    workload = f"scheduler, {args.dags} DAGs x {args.tasks} tasks, nothing due"
    target = f"< {TICK_TARGET_MS:.0f} ms"
    figures = [
        Figure(workload, "first scan (parse)", "s", large["first_s"], small["first_s"],
               "10 DAGs"),
        Figure(workload, "parse rate", "DAGs/s", args.dags / large["first_s"],
               higher_is_better=True),
        Figure(workload, "loop tick", "ms", large["tick_ms"], small["tick_ms"], "10 DAGs",
               target=target),
        Figure(workload, "loop tick with folder scan", "ms", large["scan_tick_ms"],
               small["scan_tick_ms"], "10 DAGs", target=target),
        Figure(workload, "resident memory after scan", "MB", large["rss_after_mb"],
               large["rss_before_mb"], "before scan"),
    ]
    emit("scheduler_scale", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
