"""The whole-pipeline re-run benchmark runs once at a tiny size and checks its own results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pipeline_rerun_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_ml_pipeline_rerun",
                                                  BENCHMARKS / "ml_pipeline_rerun.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    out = tmp_path / "figures.json"
    (figure,) = module.main(["--quick", "--json", str(out)])
    assert figure.baseline_label == "first run" and figure.value > 0
    assert figure.baseline is not None and figure.baseline > 0  # no timing thresholds
    assert '"benchmark": "ml_pipeline_rerun"' in out.read_text()
    assert "re-run on unchanged inputs" in capsys.readouterr().out
