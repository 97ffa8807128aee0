"""``GET /metrics`` (Prometheus text) and the OpenAPI document, for any signed-in user."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from mlpipe.web.accounts import User
from mlpipe.web.auth import require_role
from mlpipe.web.context import context
from mlpipe.web.metrics import store_registry

Viewer = Annotated[User, Depends(require_role("viewer"))]


def router() -> APIRouter:
    found = APIRouter(include_in_schema=False)

    @found.get("/metrics")
    def metrics(request: Request, _user: Viewer) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = getattr(request.app.state, "metrics_registry", None)
        if registry is None:
            registry = store_registry(context(request).store)
            request.app.state.metrics_registry = registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @found.get("/api/v1/openapi.json")
    def openapi(request: Request, _user: Viewer) -> Response:
        return Response(json.dumps(request.app.openapi()), media_type="application/json")

    return found
