"""Shared ML fixtures: two trained, logged models (a good and a near-random one) in one
MLflow store, and real ``mlpipe serve`` processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

MLPIPE = str(Path(sys.executable).parent / "mlpipe")


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"tracking_uri", "dataset_uri", "good", "bad"}``: two models logged by
    TorchTrainOperator on 600 real digits (good: ~0.9 test accuracy; bad: lr 1e-6, 1 epoch)."""
    from mlpipe import DAG
    from mlpipe.ml.datasets import write_digits_pngs
    from mlpipe.operators import ImagePreprocessOperator, TorchTrainOperator

    root = tmp_path_factory.mktemp("trained_models")
    write_digits_pngs(root / "digits", limit=600)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    base = {"model": "simple_cnn", "batch_size": 64, "seed": 0}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLPIPE_HOME", str(root / "home"))
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        with DAG("train_models") as dag:
            prep = ImagePreprocessOperator(task_id="preprocess",
                                           input_uri=(root / "digits").as_uri(),
                                           image_size=(8, 8), grayscale=True, num_workers=1)
            TorchTrainOperator(task_id="good", dataset_uri=prep.output,
                               config={**base, "epochs": 4, "lr": 0.01})
            TorchTrainOperator(task_id="bad", dataset_uri=prep.output,
                               config={**base, "epochs": 1, "lr": 1e-6})
        run = dag.test()
    assert run.state == "success", [(t.task_id, t.error) for t in run.task_instances]
    return {"tracking_uri": tracking_uri,
            "dataset_uri": run.get_task_instance("preprocess").xcom_pull().uri,
            "good": run.get_task_instance("good").xcom_pull().uri,
            "bad": run.get_task_instance("bad").xcom_pull().uri}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A running ``mlpipe serve`` process and small HTTP helpers against it."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> dict[str, Any]:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body

    def wait_until_listening(self, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mlpipe serve exited: {self.process.communicate()}")
            try:
                self.request("GET", "/health")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError("mlpipe serve did not listen within the deadline")


ServeProcess = Callable[..., Server]


@pytest.fixture
def serve_process() -> Iterator[ServeProcess]:
    """``start(model_uri, tracking_uri, *extra_args)``: a real ``mlpipe serve`` process."""
    started: list[subprocess.Popen[str]] = []

    def start(model_uri: str, tracking_uri: str, *extra: str) -> Server:
        import os

        port = free_port()
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        process = subprocess.Popen([MLPIPE, "serve", model_uri, "--port", str(port), *extra],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        started.append(process)
        server = Server(process, f"http://127.0.0.1:{port}")
        server.wait_until_listening()
        return server

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
