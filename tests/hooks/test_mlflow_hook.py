"""``MlflowHook``: a client on the tracking store it is given, or the configured one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.hooks import MlflowHook


def test_the_default_store_is_under_mlpipe_home(isolated_env: Path) -> None:
    hook = MlflowHook()

    assert hook.tracking_uri == f"sqlite:///{isolated_env.resolve() / 'mlflow.db'}"


def test_mlflow_tracking_uri_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.local:5000")

    assert MlflowHook().tracking_uri == "http://mlflow.local:5000"
    assert MlflowHook("sqlite:///elsewhere.db").tracking_uri == "sqlite:///elsewhere.db"


def test_get_conn_is_a_client_bound_to_the_uri(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    hook = MlflowHook(uri)

    client = hook.get_conn()

    assert type(client).__name__ == "MlflowClient"
    assert client._tracking_client.tracking_uri == uri
    assert hook.get_conn() is client
    assert "answers (1 experiment(s))" in hook.test_connection()
