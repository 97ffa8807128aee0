"""The engine benchmarks run once with ``--quick`` and report sane figures (never timings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench_loader import load


def figures(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    report = json.loads(path.read_text())
    return {(f["workload"], f["metric"]): f for f in report["figures"]}


def test_engine_overhead_quick(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    results = load("engine_overhead").main(["--quick", "--json", str(out)])
    found = figures(out)
    assert set(found) == {(w, m) for w in ("chain-20 dag.test()", "fan-out 1->20->1 dag.test()")
                          for m in ("wall time (median)", "overhead per task")}
    for workload in ("chain-20 dag.test()", "fan-out 1->20->1 dag.test()"):
        wall = found[(workload, "wall time (median)")]
        assert wall["value"] > wall["baseline"] > 0  # the engine does more than a call
        assert found[(workload, "overhead per task")]["value"] > 0
    assert results["chain"]["median_s"] * 1000 == pytest.approx(
        found[("chain-20 dag.test()", "wall time (median)")]["value"])


@pytest.mark.slow
def test_mapped_scale_quick(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    results = load("mapped_scale").main(["--quick", "--json", str(out)])
    found = figures(out)
    in_process, persisted = "200 mapped, dag.test()", "40 mapped, local executor x2"
    sequential = "40 mapped, persisted, sequential executor"
    for workload in (in_process, sequential, persisted):
        per_instance = found[(workload, "time per instance")]
        assert per_instance["value"] > 0 and per_instance["target"] == "<= 5 ms"
        rss = found[(workload, "peak RSS")]
        assert rss["value"] >= rss["baseline"] > 10  # MB: an interpreter with mlpipe loaded
    assert found[(persisted, "largest child peak RSS")]["value"] > 10
    against_fork = found[(persisted, "time per instance vs fork per try")]
    assert against_fork["value"] > 0 and against_fork["baseline"] > 0
    assert found[("40 mapped, local executor x2, fork per try", "time per instance")]["value"] > 0
    assert (sequential, "largest child peak RSS") not in found  # no child process
    assert all(results[path]["seconds"] > 0
               for path in ("dag_test", "persisted_sequential", "persisted"))


@pytest.mark.slow
def test_import_time_quick(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    results = load("import_time").main(["--quick", "--json", str(out)])
    found = figures(out)
    assert found[("import mlpipe", "import time (-X importtime)")]["target"] == "<= 0.3 s"
    for name, row in results.items():
        # import and wall times are medians of different interpreters (one traced by
        # -X importtime, one not): each is positive; the benchmark checks import < wall
        # within each traced run itself
        assert row["import_s"] > 0 and row["wall_s"] > 0
        assert found[(name, "interpreter wall time")]["baseline"] > 0
    assert set(results) == {"import mlpipe", "import mlpipe, mlpipe.operators, mlpipe.hooks",
                            "engine path (import mlpipe + dag.test())"}
