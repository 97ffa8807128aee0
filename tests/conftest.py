"""Fixtures shared by every test: an isolated environment and MLPIPE_HOME per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own MLPIPE_HOME, working directory and no stray MLPIPE_* settings."""
    for name in list(os.environ):
        if name.startswith(("MLPIPE_", "MLFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    home = tmp_path / "mlpipe_home"
    home.mkdir()
    monkeypatch.setenv("MLPIPE_HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    yield home
