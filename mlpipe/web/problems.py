"""Error responses in the shape of Airflow's stable REST API: ``{"detail", "status",
"title", "type"}`` (RFC 7807), and the mapping from mlpipe's errors to HTTP statuses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlpipe.errors import (
    DagDefinitionError,
    DagNotFoundError,
    MlpipeError,
    RunExistsError,
    RunNotFoundError,
    TaskNotFoundError,
    UserError,
)
from mlpipe.masking import redact

_DOCS = "https://airflow.apache.org/docs/apache-airflow/2.10.0/stable-rest-api-ref.html"
#: status -> (title, the error type's section in Airflow's API reference)
TITLES = {400: ("Bad Request", "BadRequest"), 401: ("Unauthorized", "Unauthenticated"),
          403: ("Forbidden", "PermissionDenied"), 404: ("Not Found", "NotFound"),
          405: ("Method Not Allowed", "MethodNotAllowed"), 409: ("Conflict", "AlreadyExists"),
          413: ("Request Entity Too Large", "BadRequest"),
          429: ("Too Many Requests", "Unknown"), 500: ("Internal Server Error", "Unknown")}


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """An Airflow-shaped error response (the detail masked)."""
    title, kind = TITLES.get(status, ("Error", "Unknown"))
    return JSONResponse({"detail": redact(detail), "status": status, "title": title,
                         "type": f"{_DOCS}#section/Errors/{kind}"},
                        status_code=status, headers=headers)


def status_of(exc: MlpipeError) -> int:
    """The HTTP status for an mlpipe error raised while serving a request."""
    if isinstance(exc, DagNotFoundError | RunNotFoundError | TaskNotFoundError):
        return 404
    if isinstance(exc, RunExistsError):
        return 409
    if isinstance(exc, DagDefinitionError | UserError):
        return 400
    return 500


def is_api(request: Request) -> bool:
    """True for the JSON routes (the API and metrics), False for pages."""
    return request.url.path.startswith(("/api/", "/metrics", "/health"))


def install(app: FastAPI) -> None:
    """Answer errors of API routes in Airflow's shape; pages keep FastAPI's default."""

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not is_api(request):
            return await http_exception_handler(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem(400, "; ".join(_describe(e) for e in exc.errors()[:5]))

    async def on_mlpipe(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MlpipeError)
        return problem(status_of(exc), str(exc))

    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(MlpipeError, on_mlpipe)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}"
