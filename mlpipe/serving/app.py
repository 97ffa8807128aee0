"""The FastAPI app behind ``mlpipe serve``.

- ``POST /predict``: one or more image files (multipart field ``files``) -> the predicted
  class and every class's probability per file, with the model version that answered.
- ``GET /health``: 200 when a model is loaded, 503 while waiting for one.
- ``GET /metadata``: model URI, version, classes and preprocessing.
- ``POST /reload``: follow the alias now (it is also polled every ``poll_interval`` s).

Bad payloads get a 4xx answer whose ``detail`` names the file and the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mlpipe.serving.model_holder import ModelHolder, ModelNotReadyError

log = logging.getLogger("mlpipe.serve")

MAX_FILES = 64
MAX_FILE_BYTES = 10 * 1024 * 1024


def create_app(holder: ModelHolder, *, poll_interval: float = 30.0) -> FastAPI:
    """An app serving ``holder``'s model; polls the alias every ``poll_interval`` seconds
    (0 turns polling off)."""

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
    inference_lock = asyncio.Lock()

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
    async def reload() -> dict[str, Any]:
        from mlpipe.tracking.models import ModelRegistryError

        try:
            changed = await run_in_threadpool(holder.refresh)
        except ModelRegistryError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return {"model_uri": holder.model_uri, "version": holder.current.version,
                "changed": changed}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        from mlpipe.ml.inference import predict_bytes
        from mlpipe.ml.preprocess import CorruptImageError

        served = _current(holder)
        files = await _read_files(request)
        images = [data for _, data in files]
        try:
            async with inference_lock:  # one batch at a time: torch uses every core
                predictions = await run_in_threadpool(predict_bytes, served.model,
                                                      served.spec, images)
        except CorruptImageError:
            bad = _first_undecodable(files, served.spec)
            raise HTTPException(status_code=400, detail=bad) from None
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


async def _read_files(request: Request) -> list[tuple[str, bytes]]:
    """The uploaded files, checked: multipart, 1..MAX_FILES files, none empty or too big."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(status_code=415, detail="send images as multipart/form-data "
                            "files (field 'files'), e.g. curl -F files=@digit.png")
    try:
        form = await request.form(max_files=MAX_FILES, max_part_size=MAX_FILE_BYTES)
    except HTTPException as exc:
        raise HTTPException(status_code=413 if "exceed" in str(exc.detail).lower() else 400,
                            detail=f"bad multipart payload: {exc.detail}") from None
    uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not uploads:
        raise HTTPException(status_code=400, detail="no image files in the request; send "
                            "one or more as multipart field 'files'")
    files = []
    for i, upload in enumerate(uploads):
        name = upload.filename or f"file-{i}"
        data = await upload.read()
        if not data:
            raise HTTPException(status_code=400, detail=f"file {name!r} is empty")
        files.append((name, data))
    return files


def _first_undecodable(files: list[tuple[str, bytes]], spec: Any) -> str:
    from mlpipe.ml.preprocess import CorruptImageError, decode_bytes

    for name, data in files:
        try:
            decode_bytes(data, spec.image_size, spec.grayscale)
        except CorruptImageError as exc:
            return f"file {name!r} is not a readable image: {exc.reason}"
    return "a file is not a readable image"


def _poll(holder: ModelHolder, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            holder.refresh()
        except Exception as exc:  # the current model keeps serving; say why once per poll
            log.warning("could not follow %s: %s", holder.model_uri, exc)
