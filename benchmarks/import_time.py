"""How long importing mlpipe takes, in a fresh interpreter, and what it must not import.

Workloads (each in a new interpreter, median of ``--repeat`` runs):
- ``import mlpipe``;
- ``import mlpipe, mlpipe.operators, mlpipe.hooks``;
- the engine path: ``import mlpipe`` and a two-task ``dag.test()``.
The import time is what ``python -X importtime`` reports for the statement (the sum of its
top-level imports); the wall time of the whole interpreter is reported against ``python -c
pass`` measured in the same run. Every workload asserts that torch, torchvision, mlflow and
boto3 stay out of ``sys.modules``.
Usage: ``python benchmarks/import_time.py [--repeat 9] [--quick] [--json PATH]``
(target: ``import mlpipe`` <= 0.3 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Figure, add_arguments, emit

HEAVY = ("torch", "torchvision", "mlflow", "boto3")
ENGINE_PATH = """
from mlpipe import DAG, task
with DAG("import_probe") as dag:
    @task
    def one():
        return 1
    @task
    def plus(x):
        return x + 1
    plus(one())
assert dag.test().state == "success"
"""
WORKLOADS = {
    "import mlpipe": "import mlpipe",
    "import mlpipe, mlpipe.operators, mlpipe.hooks":
        "import mlpipe, mlpipe.operators, mlpipe.hooks",
    "engine path (import mlpipe + dag.test())": "import mlpipe\n" + ENGINE_PATH,
}
PROBE = ("\nimport json, sys\n"
         f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")


def import_seconds(stderr: str) -> float:
    """Sum of the top-level entries of ``-X importtime`` output (what the statement cost)."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # one leading space: imported by the statement itself
            total += int(cumulative)
    return total / 1e6


def run_once(code: str, importtime: bool) -> tuple[float, float, list[str]]:
    """(wall seconds, import seconds, heavy modules loaded) of one fresh interpreter."""
    options = ["-X", "importtime"] if importtime else []
    began = time.perf_counter()
    done = subprocess.run([sys.executable, *options, "-c", code + PROBE], check=True,
                          capture_output=True, text=True)
    wall = time.perf_counter() - began
    heavy: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, import_seconds(done.stderr) if importtime else 0.0, heavy


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    add_arguments(parser)
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat

    baseline = statistics.median(
        run_once("pass", importtime=False)[0] for _ in range(repeat))
    results: dict[str, dict[str, float]] = {}
    figures: list[Figure] = []
    for name, code in WORKLOADS.items():
        walls, imports = [], []
        for _ in range(repeat):
            wall, _, heavy = run_once(code, importtime=False)
            assert not heavy, f"{name} imported {heavy}"
            walls.append(wall)
            traced_wall, imported, _ = run_once(code, importtime=True)
            # what -X importtime counts happens inside that interpreter's run: a parsing
            # mistake (units, the wrong lines) would break this
            assert 0 < imported < traced_wall, (name, imported, traced_wall)
            imports.append(imported)
        row = {"import_s": statistics.median(imports), "wall_s": statistics.median(walls),
               "baseline_wall_s": baseline}
        results[name] = row
        figures.append(Figure(name, "import time (-X importtime)", "s", row["import_s"],
                              target="<= 0.3 s" if name == "import mlpipe" else ""))
        figures.append(Figure(name, "interpreter wall time", "s", row["wall_s"],
                              baseline=baseline, baseline_label="python -c pass"))
    emit("import_time: a fresh interpreter importing mlpipe (no torch, mlflow, boto3)",
         figures, args.json)
    return results


if __name__ == "__main__":
    main()
