"""Cold start: whole processes (start -> exit) of mlpipe beside Luigi's, and the CLI.

Users run pipelines as fresh processes (cron, CI, the command line), so what counts there is
the interpreter's whole life, imports included. Workloads, each a new process, run
alternately with their baseline (medians of ``--repeat``):
- a one-task ``dag.test()`` against Luigi's one-task ``luigi.build(local_scheduler=True)``
  (target <= 0.8x Luigi's time);
- a 200-task chain passing an int, the same on both (target <= 0.5x Luigi's);
- ``mlpipe --help`` and ``mlpipe dags list`` (a folder of 3 DAGs, its store already made)
  against ``python -c pass`` (target < 0.3 s each).
Luigi runs with ``.peers/luigi/bin/python`` (``make bench-peers``); without it only mlpipe's
figures are printed. ``--before SRC`` also times another mlpipe source tree (for example the
previous commit, ``git archive HEAD~1 mlpipe | tar -x -C /tmp/before``) in the same rounds.
The top-10 imports of the one-task ``dag.test()`` (``python -X importtime``, cumulative) are
printed after the figures. Usage: ``python benchmarks/cold_start.py [--repeat 9] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

REPO = Path(__file__).resolve().parents[1]
PEERS_DIR = REPO / ".peers"

MLPIPE_ONE = """
from mlpipe import DAG, task
with DAG("cold_one") as dag:
    @task
    def one():
        return 1
    one()
assert dag.test().state == "success"
"""
MLPIPE_CHAIN = """
from mlpipe import DAG, task
@task
def step(x):
    return x + 1
with DAG("cold_chain") as dag:
    value = 0
    for i in range(200):
        value = step.override(task_id=f"s{i}")(value)
run = dag.test()
assert run.state == "success" and run.get_task_instance("s199").xcom_pull() == 200
"""
LUIGI_TASKS = """
import luigi
from luigi.mock import MockTarget
class Step(luigi.Task):
    i = luigi.IntParameter()
    def requires(self):
        return [Step(i=self.i - 1)] if self.i > 0 else []
    def output(self):
        return MockTarget(f"step-{self.i}")
    def run(self):
        value = 0
        if self.i > 0:
            with self.input()[0].open("r") as f:
                value = int(f.read()) + 1
        with self.output().open("w") as f:
            f.write(str(value))
"""
LUIGI_ONE = LUIGI_TASKS + """
assert luigi.build([Step(i=0)], local_scheduler=True, log_level="INFO")
"""
LUIGI_CHAIN = LUIGI_TASKS + """
assert luigi.build([Step(i=199)], local_scheduler=True, log_level="INFO")
with Step(i=199).output().open("r") as f:
    assert int(f.read()) == 199
"""
DAG_FILE = """
from mlpipe import DAG, task
with DAG("listed_{n}", schedule="@daily", tags=["bench"]) as dag:
    @task
    def one():
        return 1
    one()
"""


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one process, start to exit (it must succeed)."""
    began = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr[-2000:]}")
    return seconds


def alternate(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Median seconds of each run, the runs taking turns (so drift hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(values) for name, values in times.items()}


def importtime_top(env: dict[str, str], cwd: Path, code: str, count: int = 10
                   ) -> list[tuple[float, str]]:
    """The ``count`` imports with the largest cumulative time, as (seconds, module)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)
    found: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            found.append((int(cumulative) / 1e6, name.rstrip()))
    return sorted(found, reverse=True)[:count]


def environment(source: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(source), "MLPIPE_HOME": str(home),
            "MLPIPE_DAGS_FOLDER": str(home / "dags"), "MLFLOW_DISABLE_TELEMETRY": "true"}


def make_home(root: Path, name: str) -> Path:
    home = root / name
    (home / "dags").mkdir(parents=True)
    for n in range(3):
        (home / "dags" / f"listed_{n}.py").write_text(DAG_FILE.format(n=n))
    return home


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--before", type=Path, default=None,
                        help="another mlpipe source tree to time in the same rounds")
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    add_arguments(parser)
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    luigi = args.peers_dir / "luigi" / "bin" / "python"
    sources = {"mlpipe": REPO, **({"before": args.before.resolve()} if args.before else {})}
    with tempfile.TemporaryDirectory(prefix="mlpipe-cold-") as scratch:
        root = Path(scratch)
        envs = {label: environment(src, make_home(root, label)) for label, src in sources.items()}
        runs: dict[str, Callable[[], float]] = {}
        for label, env in envs.items():
            cli = [sys.executable, "-m", "mlpipe"]
            # the store made and the folder listed once (recorded): not measured. Before the
            # recorded listing, `dags list` on a fresh home parsed and made no store, so the
            # "store already made" case was never measured
            timed([*cli, "db", "migrate"], env, root)
            timed([*cli, "dags", "list"], env, root)
            runs |= {
                f"{label} one": lambda env=env: timed(
                    [sys.executable, "-c", MLPIPE_ONE], env, root),
                f"{label} chain": lambda env=env: timed(
                    [sys.executable, "-c", MLPIPE_CHAIN], env, root),
                f"{label} help": lambda env=env, cli=cli: timed([*cli, "--help"], env, root),
                f"{label} list": lambda env=env, cli=cli: timed(
                    [*cli, "dags", "list"], env, root),
            }
        plain_env = {**os.environ}
        runs["pass"] = lambda: timed([sys.executable, "-c", "pass"], plain_env, root)
        if luigi.exists():
            runs["luigi one"] = lambda: timed([str(luigi), "-c", LUIGI_ONE], plain_env, root)
            runs["luigi chain"] = lambda: timed([str(luigi), "-c", LUIGI_CHAIN], plain_env,
                                                root)
        else:
            print(f"cold_start: no Luigi at {luigi} (run 'make bench-peers'): mlpipe only")
        medians = alternate(runs, repeat)
        top = importtime_top(envs["mlpipe"], root, MLPIPE_ONE)
    figures = figures_of(medians, sources)
    emit("cold_start: whole processes, start to exit (medians, alternating runs)", figures,
         args.json)
    print("\n  top-10 imports of a one-task dag.test() (-X importtime, cumulative):")
    for seconds, name in top:
        print(f"    {seconds * 1000:8.1f} ms  {name}")
    return figures


def figures_of(medians: dict[str, float], sources: dict[str, Path]) -> list[Figure]:
    """One figure per workload and source tree, each against its same-run baseline."""
    luigi = {w: medians.get(f"luigi {w}") for w in ("one", "chain")}
    figures: list[Figure] = []
    for label in sources:
        for work, title, target in (("one", "1-task dag.test()", "<= 0.8x Luigi"),
                                    ("chain", "200-task chain dag.test()", "<= 0.5x Luigi")):
            figures.append(Figure(f"{label}: {title}, whole process", "wall time", "s",
                                  medians[f"{label} {work}"], baseline=luigi[work],
                                  baseline_label="Luigi local_scheduler" if luigi[work] else "",
                                  target=target))
        for work, title in (("help", "mlpipe --help"), ("list", "mlpipe dags list (3 DAGs)")):
            figures.append(Figure(f"{label}: {title}", "wall time", "s",
                                  medians[f"{label} {work}"], baseline=medians["pass"],
                                  baseline_label="python -c pass", target="< 0.3 s"))
    return figures


if __name__ == "__main__":
    main()
