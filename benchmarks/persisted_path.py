"""The persisted path: runs through the SQLite metadata store with the LocalExecutor.

Workloads (as in engine_overhead.py, but each task instance is a forked child process that
claims its instance in the store, writes its log file, XCom and state):
- chain-N: N no-op tasks passing an int (final value asserted), end to end wall time;
- fan-out 1 -> M -> 1 with the sum asserted;
- hand-off latency on the chain: from a task's end to its dependent's start, p50 / p95,
  read from the store's start/end times.
Baseline in the same run: the same functions called in one process, and the same chain
with ``dag.test()`` (in-process, SequentialExecutor, temporary store).
Usage: ``python benchmarks/persisted_path.py [--chain 40] [--big-chain 200] [--fanout 500]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from engine_overhead import build_chain

from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

DAG_FILE = '''
from mlpipe import DAG, task

def chain(n):
    with DAG(f"chain_{n}") as dag:
        @task
        def start():
            return 0

        @task
        def step(x):
            return x + 1

        value = start()
        for _ in range(n - 1):
            value = step(value)
    return dag

def fanout(m):
    with DAG(f"fanout_{m}") as dag:
        @task
        def source():
            return 1

        @task
        def branch(x, i):
            return x + i

        @task
        def join(*values):
            return sum(values)

        first = source()
        join(*[branch.override(task_id=f"b{i}")(first, i) for i in range(m)])
    return dag

'''


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(engine: Engine, dag_id: str, run_id: str) -> tuple[float, object]:
    dag = engine.get_dag(dag_id)
    engine.trigger(dag, run_id=run_id)
    began = time.perf_counter()
    result = engine.run(dag, run_id)
    elapsed = time.perf_counter() - began
    assert result.state == "success", result.state
    return elapsed, result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=40)
    parser.add_argument("--big-chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None
                                     ) as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        body = DAG_FILE + textwrap.dedent(f"""
            a = chain({args.chain})
            b = chain({args.big_chain})
            c = fanout({args.fanout})
        """)
        (folder / "bench.py").write_text(body)
        settings = load_settings(home=Path(tmp) / "home", dags_folder=folder,
                                 executor="local", parallelism=args.parallelism)
        engine = Engine.from_settings(settings)
        results: dict[str, float] = {}

        elapsed, chain_run = run(engine, f"chain_{args.chain}", "chain")
        tis = {ti.task_id: ti for ti in chain_run.task_instances}
        order = [t.task_id for t in engine.get_dag(f"chain_{args.chain}").topological_sort()]
        last = tis[order[-1]]
        assert last.xcom_pull() == args.chain - 1
        handoffs = [(tis[b].start_date - tis[a].end_date).total_seconds() * 1000
                    for a, b in itertools.pairwise(order)]
        results["chain_s"] = elapsed
        results["handoff_p50_ms"] = percentile(handoffs, 0.5)
        results["handoff_p95_ms"] = percentile(handoffs, 0.95)
        in_process = build_chain(args.chain)
        began = time.perf_counter()
        assert in_process.test().state == "success"
        results["chain_dag_test_s"] = time.perf_counter() - began
        print(f"chain-{args.chain} (local, {args.parallelism} procs): {elapsed:.3f} s end to end,"
              f" {elapsed / args.chain * 1000:.1f} ms/task; hand-off p50 "
              f"{results['handoff_p50_ms']:.1f} ms, p95 {results['handoff_p95_ms']:.1f} ms; "
              f"dag.test() same chain {results['chain_dag_test_s']:.3f} s")

        elapsed, _big = run(engine, f"chain_{args.big_chain}", "big")
        results["big_chain_s"] = elapsed
        print(f"chain-{args.big_chain} (local): {elapsed:.3f} s, "
              f"{elapsed / args.big_chain * 1000:.2f} ms/task")

        elapsed, fan = run(engine, f"fanout_{args.fanout}", "fan")
        join = fan.get_task_instance("join")
        assert join is not None
        expected = args.fanout + args.fanout * (args.fanout - 1) // 2
        assert join.xcom_pull() == expected
        results["fanout_s"] = elapsed
        print(f"fan-out 1->{args.fanout}->1 (local): {elapsed:.3f} s, "
              f"{elapsed / (args.fanout + 2) * 1000:.2f} ms/task; "
              f"mean hand-off {statistics.mean(handoffs):.1f} ms on the chain")
        return results


if __name__ == "__main__":
    main()
