"""``mlpipe ui``: the MLflow UI on the configured tracking store."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.output import console, guarded
from mlpipe.errors import SettingsError
from mlpipe.settings import load_settings


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@guarded
def ui(port: Annotated[int, typer.Option(help="0 picks a free port")] = 5000,
       host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the configured store (MLFLOW_TRACKING_URI or $MLPIPE_HOME)."""
    tracking = load_settings().tracking
    if tracking.tracking_uri.startswith(("http://", "https://")):
        console.print(f"MLflow runs on a tracking server: open {tracking.tracking_uri}")
        return
    if port == 0:
        port = _free_port(host)
    bin_dir = Path(sys.executable).parent
    mlflow = bin_dir / "mlflow"
    if not mlflow.exists():
        raise SettingsError(f"the mlflow command is not installed next to {sys.executable}")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    console.print(f"MLflow UI for {tracking.tracking_uri}: http://{host}:{port}", markup=False)
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run([str(mlflow), "ui", "--backend-store-uri", tracking.tracking_uri,
                        "--default-artifact-root", tracking.artifact_root,
                        "--host", host, "--port", str(port)], env=env, check=False)
