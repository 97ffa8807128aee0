"""`mlpipe demo`: the shipped image_classifier pipeline end to end on a local S3 server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import app

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_the_pipeline_and_a_second_run_reuses_download_and_preprocessing(
        tmp_path: Path, isolated_env: Path) -> None:
    for folder in ("pipelines", "configs"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    runner = CliRunner()

    first = runner.invoke(app, ["demo", "--limit", "300", "--epochs", "2"])
    assert first.exit_code == 0, first.output
    assert "holds 300 real 8x8 digit images" in first.output
    assert "downloaded 300, skipped 0" in first.output
    assert "registered model: models:/digits_classifier/1" in first.output
    assert "test accuracy:" in first.output
    assert "mlpipe ui" in first.output
    for task_id in ("download", "preprocess", "train", "evaluate", "upload", "register"):
        assert f"│ {task_id}" in first.output

    second = runner.invoke(app, ["demo", "--limit", "300", "--epochs", "2"])
    assert second.exit_code == 0, second.output
    assert "downloaded 0, skipped 300 (unchanged)" in second.output
    assert "cache hit: reused the recorded output" in second.output
    assert "registered model: models:/digits_classifier/2" in second.output
