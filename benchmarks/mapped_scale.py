"""A large mapped task: time per mapped instance and peak memory, in-process and persisted.

Workload: ``@task def noop(x): return x`` expanded over ``range(N)`` (default 10,000), then
a reducer summing the N values (sum asserted). Two paths:
- ``dag.test()``: in-process, SequentialExecutor, temporary SQLite store;
- persisted: the SQLite metadata store, driven as ``mlpipe dags trigger`` drives it, with the
  SequentialExecutor (every try in the driver's process, like ``dag.test()`` but on a kept
  store) and with the LocalExecutor, whose warm pool workers run the tries themselves
  (``MLPIPE_LOCAL_ISOLATION=reuse``, the default), as ``benchmarks/persisted_path.py`` runs it;
  the LocalExecutor's fork-per-try path (``MLPIPE_LOCAL_ISOLATION=fork``, each instance a
  fresh child of a pool worker) is its same-run baseline.
Each path runs in a fresh interpreter, so its peak RSS (``ru_maxrss``) is its own; the
persisted path also reports the largest child's peak. Baselines in the same run: ``noop``
called N times in one process, and the peak RSS of the same interpreter once it has
imported mlpipe and built the DAG (before running it).
Usage: ``python benchmarks/mapped_scale.py [--instances 10000] [--persisted 10000]
[--fork-instances 2000] [--parallelism 2] [--quick] [--json PATH]`` (targets: <= 5 ms per
instance; the fork baseline runs fewer instances, its cost per instance being flat).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

DAG_SOURCE = '''
from mlpipe import DAG, task

def mapped(n):
    with DAG(f"mapped_{n}") as dag:
        @task
        def noop(x):
            return x

        @task
        def total(values):
            return sum(values)

        total(noop.expand(x=list(range(n))))
    return dag
'''


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _check(run: Any, n: int) -> None:
    assert run.state == "success", run.state
    reducer = run.get_task_instance("total")
    assert reducer is not None and reducer.xcom_pull() == n * (n - 1) // 2


def worker_dag_test(n: int) -> dict[str, float]:
    """In this (fresh) interpreter: ``dag.test()`` of the mapped DAG."""
    namespace: dict[str, Any] = {}
    exec(compile(DAG_SOURCE, "mapped_dag.py", "exec"), namespace)
    dag = namespace["mapped"](n)
    before = _peak_mb()
    began = time.perf_counter()
    run = dag.test()
    elapsed = time.perf_counter() - began
    _check(run, n)
    return {"seconds": elapsed, "peak_rss_mb": _peak_mb(), "before_rss_mb": before}


def worker_persisted(n: int, parallelism: int, executor: str = "local",
                     isolation: str = "reuse") -> dict[str, float]:
    """In this (fresh) interpreter: the run through the store with ``executor``."""
    from mlpipe.scheduler.service import Engine
    from mlpipe.settings import load_settings

    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        (folder / "mapped.py").write_text(DAG_SOURCE + f"\ndag = mapped({n})\n")
        settings = load_settings(home=Path(tmp) / "home", dags_folder=folder,
                                 executor=executor, parallelism=parallelism,
                                 local_isolation=isolation)
        engine = Engine.from_settings(settings)
        dag = engine.get_dag(f"mapped_{n}")
        engine.trigger(dag, run_id="bench")
        before = _peak_mb()
        cpu = _cpu_seconds()
        began = time.perf_counter()
        run = engine.run(dag, "bench")  # its own executor, shut down at the end
        elapsed = time.perf_counter() - began
        _check(run, n)
        return {"seconds": elapsed, "peak_rss_mb": _peak_mb(), "before_rss_mb": before,
                "child_peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN),
                "cpu_seconds": _cpu_seconds() - cpu}


def _cpu_seconds() -> float:
    """CPU time of this process and of every (reaped) process under it."""
    own, children = (resource.getrusage(who)
                     for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def in_subprocess(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def baseline_ms_per_call(n: int) -> float:
    def noop(x: int) -> int:
        return x

    began = time.perf_counter()
    assert sum(noop(i) for i in range(n)) == n * (n - 1) // 2
    return (time.perf_counter() - began) / n * 1000


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000, help="dag.test() path")
    parser.add_argument("--persisted", type=int, default=10_000, help="LocalExecutor path")
    parser.add_argument("--fork-instances", type=int, default=2_000,
                        help="LocalExecutor baseline, a fresh process per try")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        kind, n = args.worker[0], int(args.worker[1])
        result = (worker_dag_test(n) if kind == "dag_test"
                  else worker_persisted(n, int(args.worker[2]), *args.worker[3:5]))
        print(json.dumps(result))
        return {kind: result}
    if args.quick:
        args.instances, args.persisted = min(args.instances, 200), min(args.persisted, 40)
        args.fork_instances = min(args.fork_instances, 40)

    results = {"dag_test": in_subprocess("dag_test", str(args.instances)),
               "persisted_sequential": in_subprocess("persisted", str(args.persisted), "1",
                                                     "sequential"),
               "persisted": in_subprocess("persisted", str(args.persisted),
                                          str(args.parallelism), "local", "reuse"),
               "persisted_fork": in_subprocess("persisted", str(args.fork_instances),
                                               str(args.parallelism), "local", "fork")}
    labels = {"dag_test": "dag.test()", "persisted_sequential": "persisted, sequential executor",
              "persisted": f"local executor x{args.parallelism}",
              "persisted_fork": f"local executor x{args.parallelism}, fork per try"}
    sizes = {"dag_test": args.instances, "persisted_sequential": args.persisted,
             "persisted": args.persisted, "persisted_fork": args.fork_instances}
    for path, row in results.items():
        row["ms_per_instance"] = row["seconds"] / sizes[path] * 1000
        if "cpu_seconds" in row:
            row["cpu_ms_per_instance"] = row["cpu_seconds"] / sizes[path] * 1000
    figures: list[Figure] = []
    for path, n in sizes.items():
        row = results[path]
        label = f"{n} mapped, {labels[path]}"
        figures.append(Figure(label, "time per instance", "ms", row["ms_per_instance"],
                              baseline=baseline_ms_per_call(n), baseline_label="plain call",
                              target="<= 5 ms"))
        if path == "persisted":  # the pool against its fork-per-try path, same run
            fork = results["persisted_fork"]
            figures.append(Figure(label, "time per instance vs fork per try", "ms",
                                  row["ms_per_instance"], baseline=fork["ms_per_instance"],
                                  baseline_label="fork per try", target="<= 5 ms"))
            figures.append(Figure(label, "CPU per instance (all processes)", "ms",
                                  row["cpu_ms_per_instance"],
                                  baseline=fork["cpu_ms_per_instance"],
                                  baseline_label="fork per try"))
        figures.append(Figure(label, "peak RSS", "MB", row["peak_rss_mb"],
                              baseline=row["before_rss_mb"],
                              baseline_label="same process before the run"))
        if path in ("persisted", "persisted_fork"):  # the sequential executor runs none
            figures.append(Figure(label, "largest child peak RSS", "MB",
                                  row["child_peak_rss_mb"]))
    emit("mapped_scale: one task mapped over many values", figures, args.json)
    return results


if __name__ == "__main__":
    main()
