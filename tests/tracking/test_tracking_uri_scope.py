"""mlpipe's model helpers leave the process's own MLflow tracking URI as they found it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
import pytest

from mlpipe.tracking.models import load_model, register_model

pytestmark = pytest.mark.slow


def test_register_and_load_do_not_repoint_the_callers_mlflow(
        trained_models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = f"sqlite:///{tmp_path / 'from_env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    mine = f"sqlite:///{tmp_path / 'my_notebook.db'}"
    mlflow.set_tracking_uri(mine)
    try:
        version = register_model(trained_models["tracking_uri"], trained_models["good"],
                                 "scope_model", {})
        loaded = load_model(f"models:/scope_model/{version}", trained_models["tracking_uri"])
        assert loaded.version == version
        assert mlflow.get_tracking_uri() == mine
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
        register_model(trained_models["tracking_uri"], trained_models["good"], "scope_model", {})
        assert os.environ["MLFLOW_TRACKING_URI"] == env  # the user's variable is kept
        assert mlflow.get_tracking_uri() == env
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
