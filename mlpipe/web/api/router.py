"""All API routes in one router."""

from __future__ import annotations

from fastapi import APIRouter

from mlpipe.web.api import health, monitoring


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(health.router())
    router.include_router(monitoring.router())
    return router
