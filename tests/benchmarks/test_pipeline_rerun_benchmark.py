"""The whole-pipeline re-run benchmark runs once at a tiny size and checks its own results."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_loader import load


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pipeline_rerun_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load("ml_pipeline_rerun")
    out = tmp_path / "figures.json"
    (figure,) = module.main(["--quick", "--json", str(out)])
    assert figure.baseline_label == "first run" and figure.value > 0
    assert figure.baseline is not None and figure.baseline > 0  # no timing thresholds
    assert '"benchmark": "ml_pipeline_rerun"' in out.read_text()
    assert "re-run on unchanged inputs" in capsys.readouterr().out
