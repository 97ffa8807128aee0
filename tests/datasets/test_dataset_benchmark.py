"""``benchmarks/dataset_trigger_latency.py`` runs at its tiny size and reports its figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_dataset_trigger_latency_quick(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("dataset_trigger_latency",
                                                  BENCHMARKS / "dataset_trigger_latency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = {(f.workload, f.metric): f for f in
               module.main(["--quick", "--json", str(tmp_path / "f.json")])}
    landed = figures[("object lands -> first task starts (poll 0.5 s)", "p50")]
    # a run cannot start before the object landed, nor (under any load) a minute later
    assert 0 < landed.value < 60 and landed.baseline is not None and landed.baseline > 0
    computed = figures[("object lands -> first task starts (poll 60 s, computed)", "p95")]
    assert computed.value >= 57
    assert (tmp_path / "f.json").exists()
