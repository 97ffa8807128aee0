"""``GET .../taskInstances/{task_id}/logs/{task_try_number}``: one try's log, masked.

``Accept: text/plain`` gets the text; otherwise ``{"content", "continuation_token"}``,
where the token is the byte offset to read on from (a page's live tail passes it back).
A response carries at most ``MAX_CHUNK`` bytes; the log must lie under the logs root.
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


def log_path(ctx: WebContext, key: TIKey, try_number: int) -> Path:
    """The file of one try's log; 404 when the try or its log does not exist."""
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
        raise HTTPException(404, f"the log of try {try_number} of {key} is missing")
    return path


def read_chunk(path: Path, offset: int) -> tuple[str, int]:
    """Text from byte ``offset`` (at most ``MAX_CHUNK`` bytes, whole lines when cut) and the
    offset after it."""
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
        if "text/plain" in request.headers.get("accept", ""):
            return PlainTextResponse(content)
        body: dict[str, Any] = {"content": content, "continuation_token": str(end)}
        return JSONResponse(body)

    return found


def _offset(token: str, path: Path) -> int:
    if not token.isdigit() or int(token) > path.stat().st_size:
        raise HTTPException(400, f"continuation_token {token[:20]!r} is not an offset in this "
                                 "log")
    return int(token)
