"""`mlpipe demo`: the shipped image_classifier pipeline end to end on a local S3 server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpipe.cli.main import app

REPO = Path(__file__).resolve().parents[2]
# A small, fast run: 300 images and 2 epochs do not reach the shipped 0.9 gate (the model
# may still predict one class: its test accuracy depends on which digits the split holds),
# so the test opens the gate through --conf (the gate itself is tested in tests/operators).
DEMO = ["demo", "--limit", "300", "--epochs", "2", "--conf", '{"gate_threshold": 0.0}']


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_the_pipeline_and_a_second_run_reuses_download_and_preprocessing(
        tmp_path: Path, isolated_env: Path) -> None:
    for folder in ("pipelines", "configs"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    runner = CliRunner()

    first = runner.invoke(app, DEMO)
    assert first.exit_code == 0, first.output
    assert "holds 300 real 8x8 digit images" in first.output
    assert "downloaded 300, skipped 0" in first.output
    assert "registered model: models:/digits_classifier/1" in first.output
    assert "test accuracy:" in first.output
    assert "mlpipe ui" in first.output
    for task_id in ("download", "preprocess", "train", "evaluate", "upload", "register",
                    "deploy"):
        assert f"│ {task_id}" in first.output
    assert "deployed: models:/digits_classifier@production -> version 1 (was unset)" \
        in first.output
    assert "sample prediction from http://127.0.0.1:" in first.output
    assert "(model version 1)" in first.output

    second = runner.invoke(app, DEMO)
    assert second.exit_code == 0, second.output
    assert "downloaded 0, skipped 300 (unchanged)" in second.output
    for task_id in ("preprocess", "train", "evaluate"):
        assert re.search(rf"│ {task_id} +│ success .*cache hit: reused", second.output), \
            task_id
    # The same model: registered once, already in production.
    assert "registered model: models:/digits_classifier/1" in second.output
    assert "deploy skipped: version 1 of 'digits_classifier' already holds alias" \
        in second.output
    assert "(model version 1)" in second.output


def test_an_unknown_demo_data_set_is_one_clear_error(isolated_env: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dataset", "cifar"])
    assert result.exit_code != 0
    assert "unknown data set 'cifar'; one of ['digits', 'fashion-mnist']" in result.output
