"""``mlpipe serve MODEL_URI``: HTTP inference for a registered or logged model."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mlpipe.cli.output import console, guarded
from mlpipe.errors import MlpipeError
from mlpipe.settings import load_settings


class ServeError(MlpipeError):
    """``mlpipe serve`` was given something it cannot serve."""


def check_model_uri(model_uri: str) -> None:
    """Accept ``models:/name/version``, ``models:/name@alias``, ``models:/m-...``, ``runs:/``.

    Raises:
        ServeError: anything else, with the forms that work.
    """
    spec = model_uri.removeprefix("models:/").removeprefix("runs:/").strip("/")
    if model_uri.startswith(("models:/", "runs:/")) and spec and not spec.endswith("@"):
        return
    raise ServeError(f"cannot serve {model_uri!r}: expected models:/<name>@<alias>, "
                     "models:/<name>/<version> or runs:/<run_id>/model")


@guarded
def serve(
    model_uri: Annotated[str, typer.Argument(help="models:/<name>@<alias>, "
                                              "models:/<name>/<version> or runs:/<id>/model")],
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    poll_interval: Annotated[float, typer.Option(
        help="Seconds between alias checks (0: only on POST /reload)")] = 30.0,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, POST /reload.

    With models:/<name>@<alias> the endpoint follows the alias: it starts even before the
    alias exists (GET /health answers 503 until then) and loads each version it moves to.
    """
    check_model_uri(model_uri)
    if port < 0 or port > 65535:
        raise ServeError(f"--port {port} is not a TCP port (0-65535)")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import uvicorn

    from mlpipe.serving.app import create_app
    from mlpipe.serving.model_holder import ModelHolder
    from mlpipe.tracking.models import ModelRegistryError

    holder = ModelHolder(model_uri, load_settings().tracking.tracking_uri)
    try:
        holder.refresh()
    except ModelRegistryError as exc:
        if not holder.follows_alias:
            raise
        console.print(f"waiting: {exc}", markup=False)
    app = create_app(holder, poll_interval=poll_interval)
    console.print(f"serving {model_uri} on http://{host}:{port} (POST /predict, GET /health, "
                  "GET /metadata, POST /reload)", markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")
