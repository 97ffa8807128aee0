"""The ML-path benchmarks run once with ``--quick``: figures exist, are sane, JSON is written.

No timing thresholds: each script checks its own results (counts, identical outputs) and
raises if they are wrong; these tests only see that it ran through and reported.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from bench_loader import load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]




def run_quick(name: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``name`` with ``--quick --json``; figures by metric, and the JSON written."""
    out = tmp_path / f"{name}.json"
    figures = load(name).main(["--quick", "--json", str(out)])
    by_metric = {f.metric: f for f in figures}
    assert len(by_metric) == len(figures), "one figure per metric"
    for f in figures:
        assert math.isfinite(f.value), f
        assert f.unit and f.workload
        if f.baseline is not None:
            assert f.baseline > 0 and f.ratio is not None and f.ratio > 0, f
    data = json.loads(out.read_text())
    assert data["benchmark"] == name
    assert [row["metric"] for row in data["figures"]] == [f.metric for f in figures]
    return by_metric, data


def test_s3_ingest_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load("ml_s3_ingest")
    figures, _ = run_quick("ml_s3_ingest", tmp_path)
    first, rerun = figures["first run (fresh dir)"], figures["no-change re-run"]
    slow = figures["20 ms latency: first run (fresh dir)"]
    assert first.value > 0 and slow.value > 0 and slow.target == ">= 1.5x"
    assert rerun.value > 0 and rerun.baseline == first.value and rerun.target == ">= 20x"
    for at in ("", "20 ms latency: "):
        assert figures[f"{at}floor: list + GETs"].value > 0
        floor = figures[f"{at}first run vs the floor"]
        assert floor.baseline == figures[f"{at}floor: list + GETs"].value
        assert floor.target == ">= 0.9x"
    printed = capsys.readouterr().out
    if module.AWS.is_file():
        assert first.baseline_label == "aws s3 sync" and first.ratio is not None
        assert slow.baseline_label == "aws s3 sync" and slow.ratio is not None
        assert "S3 ingest, 100 PNG objects" in printed
    else:
        assert first.baseline is None and "skipping the aws s3 sync comparison" in printed


def test_s3_ingest_without_awscli_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("ml_s3_ingest")
    monkeypatch.setattr(module, "AWS", tmp_path / "no-such-aws")
    figures = {f.metric: f for f in module.main(["--quick", "--objects", "20"])}
    assert figures["first run (fresh dir)"].baseline is None
    assert "skipping the aws s3 sync comparison" in capsys.readouterr().out


def test_preprocess_quick(tmp_path: Path) -> None:
    figures, data = run_quick("ml_preprocess", tmp_path)
    cpus = f"throughput ({os.cpu_count()} CPUs)"
    pillow, torchvision = figures[cpus], figures[f"{cpus} vs torchvision"]
    for figure in (pillow, torchvision):
        assert figure.unit == "images/s" and figure.higher_is_better and figure.value > 0
    assert pillow.baseline_label.startswith("Pillow loop") and pillow.target == ">= 1.8x"
    assert torchvision.baseline_label.startswith("torchvision ImageFolder")
    assert pillow.value == torchvision.value  # one mlpipe run, two baselines
    for metric in ("peak RSS", "peak RSS vs torchvision"):
        rss = figures[metric]
        assert rss.unit == "MB" and not rss.higher_is_better and rss.value > 10
    assert data["figures"][0]["ratio"] == pytest.approx(pillow.value / pillow.baseline)


def test_training_overhead_quick(tmp_path: Path) -> None:
    figures, _ = run_quick("ml_training_overhead", tmp_path)
    epoch, overhead = figures["time per epoch"], figures["per-epoch overhead (paired)"]
    assert epoch.baseline is not None and epoch.baseline > 0
    assert epoch.baseline_label == "hand-written loop"
    # one repeat: the paired median is that repeat's ratio of the two slopes
    assert overhead.unit == "%" and overhead.target == "<= 3%"
    assert overhead.value == pytest.approx((epoch.value - epoch.baseline) / epoch.baseline * 100)
    assert figures["of which MLflow model logging"].value > 0
    assert figures["fixed overhead (whole task at 0 epochs)"].unit == "s"
    assert figures["whole task in dag.test(), 2 epochs"].value > 0
