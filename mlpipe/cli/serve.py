"""``mlpipe serve MODEL_URI``: HTTP inference for a registered or logged model."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated

import typer

from mlpipe.cli.output import console, err_console, guarded
from mlpipe.errors import ServeError
from mlpipe.settings import load_settings

if TYPE_CHECKING:
    from mlpipe.serving.limits import ServeLimits

TOKEN_ENV = "MLPIPE_SERVE_TOKEN"


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


def build_limits(max_body_mb: float, max_file_mb: float, max_files: int,
                 max_pixels: int) -> ServeLimits:
    """The request limits from the command's options.

    Raises:
        ServeError: a limit that is not positive, naming the option.
    """
    from mlpipe.serving.limits import MB, ServeLimits

    for option, value in (("--max-body-mb", max_body_mb), ("--max-file-mb", max_file_mb),
                          ("--max-files", max_files), ("--max-pixels", max_pixels)):
        if not value > 0:
            raise ServeError(f"{option} {value} is not a positive number; give a limit "
                             "above 0")
    return ServeLimits(max_body_bytes=int(max_body_mb * MB),
                       max_file_bytes=int(max_file_mb * MB), max_files=max_files,
                       max_pixels=max_pixels)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@guarded
def serve(
    model_uri: Annotated[str, typer.Argument(help="models:/<name>@<alias>, "
                                              "models:/<name>/<version> or runs:/<id>/model")],
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(
        help="Interface to listen on (0.0.0.0: every interface; set --token then)")
    ] = "127.0.0.1",
    poll_interval: Annotated[float, typer.Option(
        help="Seconds between alias checks (0: only on POST /reload)")] = 30.0,
    token: Annotated[str | None, typer.Option(
        envvar=TOKEN_ENV, show_envvar=True, show_default=False,
        help="Require 'Authorization: Bearer <token>' on POST /predict and /reload")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (413 above)")] = 20,
    max_file_mb: Annotated[float, typer.Option(help="Largest uploaded file (413 above)")] = 10,
    max_files: Annotated[int, typer.Option(help="Most files in one request")] = 64,
    max_pixels: Annotated[int, typer.Option(
        help="Most pixels of one image, read from its header before decoding")] = 40_000_000,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, POST /reload.

    With models:/<name>@<alias> the endpoint follows the alias: it starts even before the
    alias exists (GET /health answers 503 until then) and loads each version it moves to.
    """
    check_model_uri(model_uri)
    if port < 0 or port > 65535:
        raise ServeError(f"--port {port} is not a TCP port (0-65535)")
    if token is not None and not token.strip():
        raise ServeError(f"--token (or {TOKEN_ENV}) is empty; give a secret token or leave "
                         "it unset")
    limits = build_limits(max_body_mb, max_file_mb, max_files, max_pixels)
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
    app = create_app(holder, poll_interval=poll_interval, limits=limits, token=token)
    if token is None and not is_loopback(host):
        err_console.print(f"warning: serving on {host} without a token: anyone who reaches "
                          f"this address can predict and reload; set --token or {TOKEN_ENV}",
                          markup=False)
    console.print(f"serving {model_uri} on http://{host}:{port} (POST /predict, GET /health, "
                  "GET /metadata, POST /reload)" + (", token required" if token else ""),
                  markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")
