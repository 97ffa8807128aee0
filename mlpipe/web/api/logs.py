"""``GET .../taskInstances/{task_id}/logs/{task_try_number}``: one try's log, masked.

``Accept: text/plain`` gets the text; otherwise ``{"content", "continuation_token"}``,
where the token is the byte offset to read on from (a page's live tail passes it back).
A response carries at most ``MAX_CHUNK`` bytes; the log must lie under the logs root.
When the local file is absent and ``MLPIPE_REMOTE_LOG_URI`` is set, the remote copy is read
(the try ran on another machine); the ``X-Mlpipe-Log-Source`` header says which was read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from mlpipe.masking import redact
from mlpipe.runtime.models import TaskInstance
from mlpipe.store.entities import TIKey
from mlpipe.web.api.common import Viewer, dag_id_of, run_id_of, task_id_of
from mlpipe.web.api.task_instances import find_ti
from mlpipe.web.context import WebContext, context

MAX_CHUNK = 1024 * 1024


def log_path(ctx: WebContext, key: TIKey, try_number: int) -> Path | bytes:
    """The file of one try's log, or its remote copy's bytes when the file is not on this
    machine; 404 when the try or its log does not exist."""
    record = find_ti(ctx, key)
    if not 1 <= try_number <= max(record.try_number, 0):
        raise HTTPException(404, f"{key} has tries 1..{record.try_number}; there is no try "
                                 f"{try_number}")
    path = TaskInstance.from_record(record, None).log_file(try_number)
    root = ctx.engine.logs_root.resolve()
    if path is None or not path.resolve().is_relative_to(root):
        raise HTTPException(404, f"the log of try {try_number} of {key} is not under the logs "
                                 "root")
    if not path.is_file():
        remote = ctx.settings.remote_log_uri
        if remote:
            from mlpipe.errors import ArtifactError
            from mlpipe.runtime.remote_logs import read_remote_log

            try:
                text = read_remote_log(remote, key, try_number)
            except (ArtifactError, OSError) as exc:
                raise HTTPException(502, redact(f"the log of try {try_number} of {key} is "
                                                f"not on this machine and its remote copy "
                                                f"could not be read: {exc}")) from None
            if text is not None:
                return text.encode()
        where = " nor in MLPIPE_REMOTE_LOG_URI" if remote else ""
        raise HTTPException(404, f"the log of try {try_number} of {key} is missing on this "
                                 f"machine{where}")
    return path


def read_chunk(path: Path | bytes, offset: int) -> tuple[str, int]:
    """Text from byte ``offset`` (at most ``MAX_CHUNK`` bytes, whole lines when cut) and the
    offset after it."""
    if isinstance(path, bytes):
        data = path[offset:offset + MAX_CHUNK]
    else:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(MAX_CHUNK)
    if len(data) == MAX_CHUNK and b"\n" in data:
        data = data[:data.rindex(b"\n") + 1]
    return redact(data.decode("utf-8", errors="replace")), offset + len(data)


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["TaskInstance"])

    @found.get("/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/"
               "{task_try_number}", summary="Get a try's log (masked)")
    def get_log(request: Request, dag_id: str, dag_run_id: str, task_id: str,
                task_try_number: int, _user: Viewer,
                map_index: Annotated[int, Query(ge=-1)] = -1,
                full_content: bool = False,
                token: Annotated[str | None, Query(max_length=20)] = None) -> Response:
        ctx = context(request)
        key = TIKey(dag_id_of(dag_id), run_id_of(dag_run_id), task_id_of(task_id), map_index)
        ctx.store.get_run(key.dag_id, key.run_id)  # 404 naming the recent runs
        path = log_path(ctx, key, task_try_number)
        offset = 0 if full_content or not token else _offset(token, path)
        content, end = read_chunk(path, offset)
        source = {"X-Mlpipe-Log-Source": "remote" if isinstance(path, bytes) else "local"}
        if "text/plain" in request.headers.get("accept", ""):
            return PlainTextResponse(content, headers=source)
        body: dict[str, Any] = {"content": content, "continuation_token": str(end)}
        return JSONResponse(body, headers=source)

    return found


def _offset(token: str, path: Path | bytes) -> int:
    size = len(path) if isinstance(path, bytes) else path.stat().st_size
    if not token.isdigit() or int(token) > size:
        raise HTTPException(400, f"continuation_token {token[:20]!r} is not an offset in this "
                                 "log")
    return int(token)
