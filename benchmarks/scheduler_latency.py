"""The scheduler: how soon a due run starts, and what one loop costs with 100 DAG files.

1. Latency: a DAG scheduled every ``--every`` seconds (catchup off); for each run, the time
   from its data interval's end (the moment it becomes due) to its first task instance's
   start, read from the store, p50 / p95 / max, with the sequential and the local executor.
   The scheduler sleeps until the next thing is due (no fixed tick), so there is no delay to
   subtract: the p95 is compared with its target, 100 ms.
2. Loop cost: ``--dags`` DAG files in the folder; the first scan (imports every file), a
   loop with nothing changed (stat only; baseline: the first scan), and a scan after
   touching one file (re-imports that file only; baseline: the first scan).
Usage: ``python benchmarks/scheduler_latency.py [--runs 10] [--every 1.0] [--dags 100]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

from mlpipe.scheduler.scheduler_job import Scheduler
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

LATENCY_DAG = """
from datetime import UTC, datetime, timedelta
from mlpipe import DAG, task

with DAG("every_second", schedule=timedelta(seconds={every}), catchup=False,
         start_date=datetime.now(UTC).replace(microsecond=0)) as dag:
    @task
    def first():
        return 1
    first()
"""
LATENCY_TARGET_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(tmp: Path, runs: int, every: float, executor: str) -> dict[str, float]:
    """Run a scheduler until ``runs`` runs succeeded; due -> first task start, in ms."""
    folder = tmp / f"latency_{executor}"
    folder.mkdir()
    (folder / "every_second.py").write_text(LATENCY_DAG.format(every=every))
    engine = Engine.from_settings(load_settings(home=tmp / f"home_{executor}",
                                                dags_folder=folder, executor=executor,
                                                parallelism=2))
    job = Scheduler(engine, scan_interval=30.0, lease=timedelta(seconds=30))
    done = lambda s: len(s.store.list_runs("every_second", states=["success"])) >= runs  # noqa: E731
    job.run(until=done)
    delays = []
    for run in engine.store.list_runs("every_second", states=["success"])[:runs]:
        ti = engine.store.list_tis("every_second", run.run_id)[0]
        assert ti.start_date is not None
        delays.append((ti.start_date - run.data_interval_end).total_seconds() * 1000)
    return {"p50_ms": percentile(delays, 0.5), "p95_ms": percentile(delays, 0.95),
            "max_ms": max(delays), "runs": len(delays)}


def loop_cost(tmp: Path, dags: int) -> dict[str, float]:
    """Cost of the first scan, an idle loop and a scan after one file changed, in ms."""
    folder = tmp / "many"
    folder.mkdir()
    for i in range(dags):
        (folder / f"dag_{i:03d}.py").write_text(textwrap.dedent(f"""
            from mlpipe import DAG
            from mlpipe.operators import EmptyOperator
            with DAG("dag_{i:03d}", schedule=None) as dag:
                EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        """))
    engine = Engine.from_settings(load_settings(home=tmp / "home_many", dags_folder=folder))
    job = Scheduler(engine, scan_interval=0.0)
    began = time.perf_counter()
    job._scan()
    first = time.perf_counter() - began
    parses = job.watcher.parses
    idle = []
    for _ in range(20):
        began = time.perf_counter()
        job._scan()
        job._create_due_runs(set())
        idle.append(time.perf_counter() - began)
    target = folder / f"dag_{dags // 2:03d}.py"
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    began = time.perf_counter()
    job._scan()
    touched = time.perf_counter() - began
    assert job.watcher.parses == parses + 1, job.watcher.parses
    return {"first_scan_ms": first * 1000, "idle_loop_ms": statistics.median(idle) * 1000,
            "one_changed_ms": touched * 1000, "files": dags}


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--dags", type=int, default=100)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.every, args.dags = 2, 0.5, 5
    logging.getLogger().setLevel(logging.WARNING)
    figures: list[Figure] = []
    target = f"< {LATENCY_TARGET_MS:.0f} ms"
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for executor in ("sequential", "local"):
            row = latency(tmp, args.runs, args.every, executor)
            assert row["runs"] == args.runs, row
            workload = f"due run -> first task start ({executor})"
            figures += [
                Figure(workload, "p50", "ms", row["p50_ms"]),
                Figure(workload, "p95", "ms", row["p95_ms"], LATENCY_TARGET_MS, "target",
                       target=target),
                Figure(workload, "max", "ms", row["max_ms"]),
            ]
        row = loop_cost(tmp, args.dags)
        workload = f"scheduler loop, {args.dags} DAG files"
        first = row["first_scan_ms"]
        figures += [
            Figure(workload, "first scan", "ms", first),
            Figure(workload, "idle loop", "ms", row["idle_loop_ms"], first, "first scan"),
            Figure(workload, "one file changed", "ms", row["one_changed_ms"], first,
                   "first scan"),
        ]
    emit("scheduler_latency", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
