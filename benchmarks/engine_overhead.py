"""Engine overhead per task with ``dag.test()``, against plain function calls doing the same work.

Workloads:
- chain: N no-op ``@task``s, each passing an int to the next (final value asserted);
- fan-out: 1 -> M -> 1, the join sums the M values (sum asserted).

Prints median / min / max wall time over ``--repeat`` runs, the per-task overhead in ms
((mlpipe - baseline) / tasks) and the ratio to the baseline measured in the same run.
Usage: ``python benchmarks/engine_overhead.py [--chain 200] [--fanout 500] [--repeat 5]
[--quick] [--json PATH]``. Figures go through ``_report`` (target: <= 0.5 ms per task).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

from mlpipe import DAG, task

LOGICAL_DATE = datetime(2024, 1, 1)


def build_chain(n: int) -> DAG:
    with DAG(f"bench_chain_{n}") as dag:
        @task
        def start() -> int:
            return 0

        @task
        def step(x: int) -> int:
            return x + 1

        value = start()
        for _ in range(n - 1):
            value = step(value)
    return dag


def build_fanout(m: int) -> DAG:
    with DAG(f"bench_fanout_{m}") as dag:
        @task
        def source() -> int:
            return 1

        @task
        def branch(x: int, i: int) -> int:
            return x + i

        @task
        def join(*values: int) -> int:
            return sum(values)

        first = source()
        join(*[branch.override(task_id=f"b{i}")(first, i) for i in range(m)])
    return dag


def baseline_chain(n: int) -> int:
    def start() -> int:
        return 0

    def step(x: int) -> int:
        return x + 1

    value = start()
    for _ in range(n - 1):
        value = step(value)
    return value


def baseline_fanout(m: int) -> int:
    def branch(x: int, i: int) -> int:
        return x + i

    return sum(branch(1, i) for i in range(m))


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return times, result


def run_dag(dag: DAG, leaf: str) -> int:
    run = dag.test(logical_date=LOGICAL_DATE)
    assert run.state == "success", run.state
    ti = run.get_task_instance(leaf)
    assert ti is not None
    value: int = ti.xcom_pull()
    return value


def report(name: str, tasks: int, engine: list[float], base: list[float]) -> dict[str, float]:
    med, base_med = statistics.median(engine), statistics.median(base)
    per_task_ms = (med - base_med) / tasks * 1000
    row = {"median_s": med, "min_s": min(engine), "max_s": max(engine),
           "baseline_median_s": base_med, "per_task_ms": per_task_ms,
           "ratio": med / base_med if base_med else float("inf")}
    print(f"{name:<22} tasks={tasks:<5} median={med * 1000:9.1f} ms  min={min(engine) * 1000:9.1f}"
          f"  max={max(engine) * 1000:9.1f}  baseline={base_med * 1000:7.3f} ms  "
          f"overhead/task={per_task_ms:6.3f} ms")
    return row


def figures(name: str, row: dict[str, float]) -> list[Figure]:
    return [
        Figure(name, "wall time (median)", "ms", row["median_s"] * 1000,
               baseline=row["baseline_median_s"] * 1000, baseline_label="plain calls"),
        Figure(name, "overhead per task", "ms", row["per_task_ms"], target="<= 0.5 ms"),
    ]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.chain, args.fanout, args.repeat = min(args.chain, 20), min(args.fanout, 20), 1
    logging.getLogger().setLevel(logging.WARNING)

    results: dict[str, dict[str, float]] = {}
    chain = build_chain(args.chain)
    leaf = "step" if args.chain == 2 else f"step__{args.chain - 2}"
    run_dag(chain, leaf)  # warm-up
    engine, value = timed(lambda: run_dag(chain, leaf), args.repeat)
    assert value == args.chain - 1, value
    base, expected = timed(lambda: baseline_chain(args.chain), args.repeat)
    assert expected == value
    results["chain"] = report(f"chain-{args.chain}", args.chain, engine, base)

    fanout = build_fanout(args.fanout)
    engine, total = timed(lambda: run_dag(fanout, "join"), args.repeat)
    base, expected = timed(lambda: baseline_fanout(args.fanout), args.repeat)
    assert total == expected == args.fanout + args.fanout * (args.fanout - 1) // 2, total
    results["fanout"] = report(f"fan-out 1->{args.fanout}->1", args.fanout + 2, engine, base)

    emit("engine_overhead: dag.test() per-task overhead",
         figures(f"chain-{args.chain} dag.test()", results["chain"])
         + figures(f"fan-out 1->{args.fanout}->1 dag.test()", results["fanout"]), args.json)
    return results


if __name__ == "__main__":
    main()
