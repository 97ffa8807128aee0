"""Each benchmark runs once at a tiny size: it works and checks its own results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench_loader import load


def test_engine_overhead_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    results = load("engine_overhead").main(["--chain", "5", "--fanout", "4", "--repeat", "1"])
    assert set(results) == {"chain", "fanout"}
    for row in results.values():
        assert row["median_s"] > 0
        assert row["ratio"] > 1  # the engine does more than a bare function call
    printed = capsys.readouterr().out
    assert "chain-5" in printed and "fan-out 1->4->1" in printed


def figures_by_key(figures: list[Any]) -> dict[tuple[str, str], Any]:
    """A benchmark's ``Figure``s by (workload, metric)."""
    return {(f.workload, f.metric): f for f in figures}


def test_persisted_path_tiny(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    figures = figures_by_key(load("persisted_path").main(
        ["--chain", "3", "--big-chain", "4", "--fanout", "3", "--json", str(out)]))
    wall = figures[("chain-3 (local, 2 procs)", "wall time")]
    assert wall.value > 0 and wall.baseline > 0 and wall.baseline_label.startswith("dag.test")
    p50, p95 = figures[("chain-3 hand-off", "p50")], figures[("chain-3 hand-off", "p95")]
    assert 0 <= p50.value <= p95.value and p95.target == "< 50 ms"
    assert ("fan-out 1->3->1 (local, 2 procs)", "wall time") in figures
    per_task = figures[("chain-4 (local, 2 procs)", "time per task")]
    assert per_task.value > 0 and per_task.baseline > 0  # the fork-per-try path, same run
    assert per_task.baseline_label == "fork per try" and per_task.target == "<= 5 ms"
    written = json.loads(out.read_text())
    assert written["benchmark"] == "persisted_path" and len(written["figures"]) == len(figures)
    assert "chain-3 hand-off" in capsys.readouterr().out


def test_scheduler_latency_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    figures = figures_by_key(load("scheduler_latency").main(["--quick"]))
    for executor in ("sequential", "local"):
        workload = f"due run -> first task start ({executor})"
        p50, p95 = figures[(workload, "p50")], figures[(workload, "p95")]
        assert 0 <= p50.value <= p95.value <= figures[(workload, "max")].value
        assert p95.baseline == 100 and p95.target == "< 100 ms"
    idle = figures[("scheduler loop, 5 DAG files", "idle loop")]
    assert idle.baseline_label == "first scan"
    assert "one file changed" in capsys.readouterr().out


def test_scheduler_scale_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    figures = figures_by_key(load("scheduler_scale").main(["--dags", "12", "--ticks", "3"]))
    workload = "scheduler, 12 DAGs x 10 tasks, nothing due"
    tick = figures[(workload, "loop tick")]
    assert tick.value > 0 and tick.baseline_label == "10 DAGs" and tick.target == "< 100 ms"
    assert figures[(workload, "first scan (parse)")].value > 0
    assert figures[(workload, "resident memory after scan")].baseline > 0
    assert "scheduler_scale" in capsys.readouterr().out


@pytest.mark.slow
def test_cold_start_tiny(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # no peers folder here: mlpipe's figures alone, against python -c pass
    figures = figures_by_key(load("cold_start").main(
        ["--repeat", "1", "--peers-dir", str(tmp_path)]))
    one = figures[("mlpipe: 1-task dag.test(), whole process", "wall time")]
    assert one.value > 0 and one.baseline is None and one.target == "<= 0.8x Luigi"
    listed = figures[("mlpipe: mlpipe dags list (3 DAGs)", "wall time")]
    assert listed.value > listed.baseline > 0  # more than an empty interpreter
    printed = capsys.readouterr().out
    assert "no Luigi" in printed and "top-10 imports" in printed
    assert "mlpipe.scheduler.dag_test" in printed
