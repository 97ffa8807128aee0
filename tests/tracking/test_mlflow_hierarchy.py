"""Each DAG run is one MLflow parent run; each try of a task that logs is a nested child."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mlpipe import DAG, task


def build_dag(marker: Path) -> DAG:
    with DAG("tracked", default_args={"retries": 1, "retry_delay": timedelta(0)}) as dag:
        @task
        def prepare() -> int:  # never touches MLflow: no child run for it
            return 3

        @task
        def train(n: int, mlflow_run=None, ti=None) -> float:
            mlflow_run.log_params({"n": n, "lr": 0.1})
            mlflow_run.log_metrics({"loss": 1.0 / ti.try_number}, step=ti.try_number)
            if not marker.exists():
                marker.touch()
                raise RuntimeError("first try fails")
            return 0.5

        train(prepare())
    return dag


def runs_of(tracking_uri: str) -> tuple[list, list]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None
    assert experiment.artifact_location.startswith(("file:///", "mlflow-artifacts:"))
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def check_hierarchy(tracking_uri: str, tmp_path: Path) -> None:
    run = build_dag(tmp_path / "failed-once").test(logical_date="2024-05-01")
    assert run.state == "success"
    parents, children = runs_of(tracking_uri)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlpipe.dag_id"] == "tracked"
    assert parent.data.tags["mlpipe.run_id"] == run.run_id
    assert parent.data.tags["mlpipe.logical_date"].startswith("2024-05-01")
    assert len(parent.data.tags["mlpipe.config_hash"]) == 64
    by_try = {c.data.tags["mlpipe.try_number"]: c for c in children}
    assert set(by_try) == {"1", "2"}
    assert by_try["1"].info.status == "FAILED"
    assert by_try["2"].info.status == "FINISHED"
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["mlpipe.task_id"] == "train"
        assert child.data.params == {"n": "3", "lr": "0.1"}
    assert by_try["2"].data.metrics["loss"] == 0.5


def test_parent_and_two_children_in_a_sqlite_store(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    check_hierarchy(uri, tmp_path)
    assert not (tmp_path / "mlruns").exists()  # experiments get an absolute location


def test_default_store_is_under_mlpipe_home(isolated_env: Path, tmp_path: Path) -> None:
    run = build_dag(tmp_path / "failed-once").test()
    assert run.state == "success"
    assert (isolated_env / "mlflow.db").exists()
    parents, children = runs_of(f"sqlite:///{isolated_env / 'mlflow.db'}")
    assert len(parents) == 1 and len(children) == 2


def test_a_dag_that_never_logs_creates_no_mlflow_run(isolated_env: Path) -> None:
    with DAG("untracked") as dag:
        @task
        def plain() -> int:
            return 1

        plain()
    assert dag.test().state == "success"
    assert not (isolated_env / "mlflow.db").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen(
        [str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", (tmp_path / "server-artifacts").as_uri(),
         "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, "mlflow server exited"
            assert time.monotonic() < deadline, "mlflow server did not start in 90 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_parent_and_two_children_on_a_real_mlflow_server(
        mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    check_hierarchy(mlflow_server, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mlpipe_ui_serves_the_configured_store(isolated_env: Path, tmp_path: Path) -> None:
    build_dag(tmp_path / "failed-once").test()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlpipe", "ui", "--port", str(port)],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        assert str(isolated_env / "mlflow.db") in first
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
                        "?experiment_name=tracked", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                assert process.poll() is None, "mlpipe ui exited"
                assert time.monotonic() < deadline, "MLflow UI did not answer in 90 s"
                time.sleep(0.3)
        assert json.loads(body)["experiment"]["name"] == "tracked"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
