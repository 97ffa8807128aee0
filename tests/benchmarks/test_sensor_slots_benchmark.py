"""``benchmarks/sensor_slots.py`` runs once at a tiny size and reports its figures (no
timing thresholds: the figures are read, not judged, here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_loader import load


@pytest.mark.timeout(120)
def test_sensor_slots_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    figures = {f.metric: f for f in load("sensor_slots").main(["--quick", "--json", str(out)])}
    assert set(figures) == {"ordinary tasks done", "run done", "queueings per sensor"}
    for metric in ("ordinary tasks done", "run done"):
        assert figures[metric].value > 0 and figures[metric].baseline_label == "poke mode"
        assert figures[metric].baseline is not None and figures[metric].baseline > 0
    assert figures["queueings per sensor"].value >= 1  # each sensor was queued at least once
    written = json.loads(out.read_text())
    assert written["benchmark"] == "sensor_slots" and len(written["figures"]) == 3
    assert "2 sensors waiting 1 s + 2 tasks, 1 slot" in capsys.readouterr().out
