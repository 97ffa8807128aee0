"""The persisted path: runs through the SQLite metadata store with the LocalExecutor.

Workloads (as in engine_overhead.py, but each task instance runs in a LocalExecutor pool
worker, a process apart from the driver, that claims its instance in the store, writes its
log file, XCom and state):
- chain-N: N no-op tasks passing an int (final value asserted), end to end wall time and
  per-task overhead (wall time less the same functions called in one process, per task);
- hand-off latency on that chain: from a task's end to its dependent's start, p50 / p95
  (target: p95 under 50 ms), read from the store's start/end times;
- chain-M and fan-out 1 -> K -> 1 (sum asserted), wall time; chain-M per task (target:
  <= 5 ms), against the LocalExecutor's fork-per-try path (``MLPIPE_LOCAL_ISOLATION=fork``,
  a fresh child of a pool worker per try) on the same chain in the same run.
Baseline in the same run: the same DAG through ``dag.test()`` (in-process,
SequentialExecutor, temporary store), so the ratio is what persistence and processes cost.
Usage: ``python benchmarks/persisted_path.py [--chain 40] [--big-chain 200] [--fanout 500]
[--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from _common import plain_chain  # the baselines the peers use too (stdlib only)
from _report import Figure, add_arguments, emit
from engine_overhead import build_chain, build_fanout

from mlpipe.core.dag import DAG
from mlpipe.runtime.models import DagRun
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings

HANDOFF_TARGET_MS = 50.0

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


@dataclass
class ChainResult:
    """One chain run through the store: wall time, per-task overhead and hand-offs."""

    tasks: int
    seconds: float
    plain_seconds: float
    handoffs_ms: list[float]

    @property
    def per_task_ms(self) -> float:
        return (self.seconds - self.plain_seconds) / self.tasks * 1000




def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def store_engine(*, chains: tuple[int, ...] = (), fanouts: tuple[int, ...] = (),
                 executor: str = "local", parallelism: int = 2,
                 isolation: str = "reuse") -> Iterator[Engine]:
    """An engine on a throw-away SQLite store whose DAGs folder holds the given DAGs."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        lines = [f"chain_{n} = chain({n})" for n in chains]
        lines += [f"fanout_{m} = fanout({m})" for m in fanouts]
        (folder / "bench.py").write_text(DAG_FILE + textwrap.dedent("\n".join(lines)) + "\n")
        settings = load_settings(home=Path(tmp) / "home", dags_folder=folder,
                                 executor=executor, parallelism=parallelism,
                                 local_isolation=isolation)
        yield Engine.from_settings(settings)


def run(engine: Engine, dag_id: str, run_id: str) -> tuple[float, DagRun]:
    """Trigger and drive one run of ``dag_id``; wall time of the drive and the run."""
    dag = engine.get_dag(dag_id)
    engine.trigger(dag, run_id=run_id)
    began = time.perf_counter()
    result = engine.run(dag, run_id)
    elapsed = time.perf_counter() - began
    assert result.state == "success", result.state
    return elapsed, result


def run_chain(engine: Engine, n: int, run_id: str = "chain") -> ChainResult:
    """Run ``chain_<n>`` through the store, check its value, read its hand-offs."""
    elapsed, chain_run = run(engine, f"chain_{n}", run_id)
    tis = {ti.task_id: ti for ti in chain_run.task_instances}
    order = [t.task_id for t in engine.get_dag(f"chain_{n}").topological_sort()]
    assert tis[order[-1]].xcom_pull() == n - 1
    handoffs = []
    for a, b in itertools.pairwise(order):
        end, start = tis[a].end_date, tis[b].start_date
        assert end is not None and start is not None
        handoffs.append((start - end).total_seconds() * 1000)
    began = time.perf_counter()
    assert plain_chain(n) == n - 1
    return ChainResult(n, elapsed, time.perf_counter() - began, handoffs)


def dag_test_seconds(build: Callable[[int], DAG], size: int) -> float:
    """Wall time of one ``dag.test()`` of the same DAG (after building it and a warm-up)."""
    dag = build(size)
    assert dag.test().state == "success"
    began = time.perf_counter()
    assert dag.test().state == "success"
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chain", type=int, default=40)
    parser.add_argument("--big-chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=2)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.chain, args.big_chain, args.fanout = 3, 4, 3
    logging.getLogger().setLevel(logging.WARNING)
    local = f"local, {args.parallelism} procs"

    with store_engine(chains=(args.chain, args.big_chain), fanouts=(args.fanout,),
                      parallelism=args.parallelism) as engine:
        chain = run_chain(engine, args.chain)
        big_s, _ = run(engine, f"chain_{args.big_chain}", "big")
        fan_s, fan = run(engine, f"fanout_{args.fanout}", "fan")
        join = fan.get_task_instance("join")
        assert join is not None
        assert join.xcom_pull() == args.fanout + args.fanout * (args.fanout - 1) // 2

    with store_engine(chains=(args.big_chain,), parallelism=args.parallelism,
                      isolation="fork") as engine:
        fork_s, _ = run(engine, f"chain_{args.big_chain}", "big")

    chain_test_s = dag_test_seconds(build_chain, args.chain)
    label = "dag.test() same DAG"
    figures = [
        Figure(f"chain-{args.chain} ({local})", "wall time", "s", chain.seconds,
               chain_test_s, label),
        Figure(f"chain-{args.chain} ({local})", "per-task overhead", "ms", chain.per_task_ms,
               (chain_test_s - chain.plain_seconds) / args.chain * 1000, label),
        Figure(f"chain-{args.chain} hand-off", "p50", "ms", percentile(chain.handoffs_ms, 0.5)),
        Figure(f"chain-{args.chain} hand-off", "p95", "ms", percentile(chain.handoffs_ms, 0.95),
               HANDOFF_TARGET_MS, "target", target=f"< {HANDOFF_TARGET_MS:.0f} ms"),
        Figure(f"chain-{args.big_chain} ({local})", "wall time", "s", big_s,
               dag_test_seconds(build_chain, args.big_chain), label),
        Figure(f"chain-{args.big_chain} ({local})", "time per task", "ms",
               big_s / args.big_chain * 1000, fork_s / args.big_chain * 1000,
               "fork per try", target="<= 5 ms"),
        Figure(f"fan-out 1->{args.fanout}->1 ({local})", "wall time", "s", fan_s,
               dag_test_seconds(build_fanout, args.fanout), label),
    ]
    emit("persisted_path", figures, args.json)
    return figures


if __name__ == "__main__":
    main()
