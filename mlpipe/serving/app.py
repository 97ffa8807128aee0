"""The FastAPI app behind ``mlpipe serve``.

- ``POST /predict``: one or more image files (multipart field ``files``) -> the predicted
  class and every class's probability per file, with the model version that answered.
- ``GET /health``: 200 when a model is loaded, 503 while waiting for one.
- ``GET /metadata``: model URI, version, classes and preprocessing.
- ``POST /reload``: follow the alias now (it is also polled every ``poll_interval`` s).

Bad payloads get a 4xx answer whose ``detail`` names the file and the problem. Input is
bounded (``ServeLimits``): body and files are capped while they stream in (413), images
above the pixel limit are refused from their header (413) before any decoding, and decoding
runs outside the inference lock, which only guards the model's forward pass. With a
``token``, ``/predict`` and ``/reload`` need ``Authorization: Bearer <token>`` (401).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlpipe.serving.limits import (
    BodyLimitMiddleware,
    ServeLimits,
    check_pixels,
    read_image_files,
)
from mlpipe.serving.model_holder import ModelHolder, ModelNotReadyError

log = logging.getLogger("mlpipe.serve")


def create_app(holder: ModelHolder, *, poll_interval: float = 30.0,
               limits: ServeLimits | None = None, token: str | None = None) -> FastAPI:
    """An app serving ``holder``'s model; polls the alias every ``poll_interval`` seconds
    (0 turns polling off). ``token`` guards ``/predict`` and ``/reload``."""
    limits = limits or ServeLimits()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        poller = None
        if holder.follows_alias and poll_interval > 0:
            poller = threading.Thread(target=_poll, args=(holder, poll_interval, stop),
                                      name="mlpipe-serve-poll", daemon=True)
            poller.start()
        yield
        stop.set()
        if poller is not None:
            poller.join(timeout=5)

    app = FastAPI(title="mlpipe serve", lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=limits.max_body_bytes)
    inference_lock = asyncio.Lock()  # one forward pass at a time: torch uses every core
    decoding = asyncio.Semaphore(os.cpu_count() or 1)  # bounds decode memory too

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            served = holder.current
        except ModelNotReadyError as exc:
            return JSONResponse({"status": "waiting", "model_uri": holder.model_uri,
                                 "detail": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "model_uri": holder.model_uri,
                             "version": served.version})

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        served = _current(holder)
        return {"model_uri": holder.model_uri, "model_name": holder.name,
                "alias": holder.alias, "version": served.version,
                "loaded_at": served.loaded_at, **served.spec.to_dict()}

    @app.post("/reload")
    async def reload(request: Request) -> dict[str, Any]:
        from mlpipe.tracking.models import ModelRegistryError

        _authorize(request, token)
        try:
            changed = await run_in_threadpool(holder.refresh)
        except ModelRegistryError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return {"model_uri": holder.model_uri, "version": holder.current.version,
                "changed": changed}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        from mlpipe.ml.inference import predict_pixels

        _authorize(request, token)  # before a byte of the body is read
        served = _current(holder)
        files = await read_image_files(request, limits)
        async with decoding:
            pixels = await run_in_threadpool(_decode_all, files, served.spec, limits.max_pixels)
        async with inference_lock:
            predictions = await run_in_threadpool(predict_pixels, served.model, served.spec,
                                                  pixels)
        return {"model_uri": holder.model_uri, "model_version": served.version,
                "predictions": [{"filename": name, "label": p.label,
                                 "probability": p.probability,
                                 "probabilities": p.probabilities}
                                for (name, _), p in zip(files, predictions, strict=True)]}

    return app


def _current(holder: ModelHolder) -> Any:
    try:
        return holder.current
    except ModelNotReadyError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None


def _authorize(request: Request, token: str | None) -> None:
    """401 unless the request carries ``Authorization: Bearer <token>`` (constant time)."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token: send "
                            "'Authorization: Bearer <token>' (the server's --token)",
                            headers={"WWW-Authenticate": "Bearer"})


def _decode_all(files: list[tuple[str, bytes]], spec: Any, max_pixels: int) -> list[Any]:
    """Every file decoded as for training; 413 above ``max_pixels``, 400 naming a bad file."""
    from mlpipe.ml.preprocess import CorruptImageError, decode_bytes

    pixels = []
    for name, data in files:
        check_pixels(name, data, max_pixels)
        try:
            pixels.append(decode_bytes(data, spec.image_size, spec.grayscale, spec.resize))
        except CorruptImageError as exc:
            raise HTTPException(status_code=400, detail=f"file {name!r} is not a readable "
                                f"image: {exc.reason}") from None
    return pixels


def _poll(holder: ModelHolder, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            holder.refresh()
        except Exception as exc:  # the current model keeps serving; say why once per poll
            log.warning("could not follow %s: %s", holder.model_uri, exc)
