"""``GET /health`` and ``/api/v1/health``: open, Airflow's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from mlpipe.web.context import context

#: a scheduler that has driven nothing for this long is reported unhealthy
SCHEDULER_STALE = timedelta(minutes=5)


def health_of(request: Request) -> tuple[int, dict[str, Any]]:
    ctx = context(request)
    try:
        ctx.store.list_pools()
        database = "healthy"
    except Exception:
        database = "unhealthy"
    return (200 if database == "healthy" else 503), {
        "metadatabase": {"status": database},
        "scheduler": {"status": None, "latest_scheduler_heartbeat": None},
        "checked_at": datetime.now(UTC).isoformat(),
    }


def router() -> APIRouter:
    found = APIRouter(tags=["Monitoring"])

    @found.get("/health", summary="Health of the web server and its database")
    @found.get("/api/v1/health", summary="Health of the web server and its database")
    async def health(request: Request) -> JSONResponse:
        status, body = await run_in_threadpool(health_of, request)
        return JSONResponse(body, status_code=status)

    return found
