"""``benchmarks/web_scale.py`` runs at a tiny size and reports its figures and baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_loader import load

pytestmark = pytest.mark.slow


def test_web_scale_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    figures = load("web_scale").main(["--quick", "--no-postgres", "--json", str(out)])

    by_key = {(f.workload, f.metric): f for f in figures}
    listing = by_key[("GET /api/v1/dags (5 DAGs, SQLite)", "p50")]
    assert listing.value > 0 and listing.baseline is not None and listing.baseline > 0
    assert listing.baseline_label == "GET /health"
    assert by_key[("GET /api/v1/dags (5 DAGs, SQLite)", "p95")].target == "< 100 ms"
    assert json.loads(out.read_text())["benchmark"] == "web_scale"
    assert "GET dagRuns, a page of 25 newest (SQLite)" in capsys.readouterr().out
