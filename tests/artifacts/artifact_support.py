"""Helpers for the artifact store tests: backends under test, trees, writer processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlpipe.artifacts import ArtifactStore

WRITER = Path(__file__).with_name("writer_process.py")
BUCKET = "mlpipe-artifacts"
S3_SECRET = "moto-secret-never-printed"


@dataclass
class Backend:
    """One store under test, with a fresh directory and a way to seed files into it."""

    name: str
    store: ArtifactStore
    root: str  # a fresh directory URI (no trailing slash) for this test
    seed: Callable[[Mapping[str, bytes]], str]  # writes relpath -> bytes; returns the dir URI


def log_run(tracking: Mapping[str, str], files: Mapping[str, bytes], tmp: Path,
            *, artifact_path: str = "data") -> str:
    """Log ``files`` into a new MLflow run under ``artifact_path``; return its run id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    run_id: str = client.create_run(tracking["experiment_id"]).info.run_id
    source = tmp / f"logged-{run_id}"
    write_tree(source, files)
    client.log_artifacts(run_id, str(source), artifact_path)
    client.set_terminated(run_id)
    return run_id


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    """Create ``files`` (relpath -> bytes) under ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def nested_files(count: int = 50) -> dict[str, bytes]:
    """``count`` small files spread over nested directories."""
    return {
        f"level{i % 3}/sub{i % 5}/file{i:02d}.bin": f"payload {i} ".encode() * (i + 1)
        for i in range(count)
    }


def start_writer(op: str, source: Path, uri: str,
                 s3_options: Mapping[str, Any] | None = None) -> subprocess.Popen[bytes]:
    """Start ``writer_process.py`` doing ``store.<op>(source, uri)`` in its own process."""
    spec = json.dumps({"op": op, "source": str(source), "uri": uri,
                       "s3_options": dict(s3_options or {})})
    return subprocess.Popen([sys.executable, str(WRITER), spec], env=dict(os.environ),
                            stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 20.0,
             process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``condition`` until true; fail naming ``what`` (and the writer's stderr)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"writer exited ({process.returncode}) before {what}: {stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)

