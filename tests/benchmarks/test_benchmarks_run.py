"""Each benchmark runs once at a tiny size: it works and checks its own results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_engine_overhead_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    results = load("engine_overhead").main(["--chain", "5", "--fanout", "4", "--repeat", "1"])
    assert set(results) == {"chain", "fanout"}
    for row in results.values():
        assert row["median_s"] > 0
        assert row["ratio"] > 1  # the engine does more than a bare function call
    printed = capsys.readouterr().out
    assert "chain-5" in printed and "fan-out 1->4->1" in printed


def test_persisted_path_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    results = load("persisted_path").main(["--chain", "3", "--big-chain", "3", "--fanout", "3"])
    assert results["chain_s"] > 0
    assert 0 <= results["handoff_p50_ms"] <= results["handoff_p95_ms"]
    assert "hand-off p50" in capsys.readouterr().out


def test_scheduler_latency_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    results = load("scheduler_latency").main(["--runs", "2", "--every", "0.5", "--dags", "5"])
    for executor in ("sequential", "local"):
        assert results[f"latency_{executor}"]["runs"] == 2
        assert results[f"latency_{executor}"]["p95_ms"] >= 0
    assert results["loop"]["files"] == 5
    assert "one file changed" in capsys.readouterr().out
