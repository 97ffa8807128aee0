"""``create_app``: the web server's FastAPI application (API, auth, metrics, pages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipe import __version__
from mlpipe.serving.limits import BodyLimitMiddleware, Send
from mlpipe.settings import Settings, load_settings
from mlpipe.web.context import WebContext

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC = Path(__file__).parent / "static"
#: no route takes more than a small JSON body or form
MAX_BODY_BYTES = 1024 * 1024


class WebBodyLimit(BodyLimitMiddleware):
    """413 in the API's error shape for a body above ``MAX_BODY_BYTES``."""

    async def _reject(self, send: Send) -> None:
        from mlpipe.web.problems import problem

        response = problem(413, f"request body is larger than the limit of "
                                f"{self.max_body_bytes} bytes")
        body = bytes(response.body)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web server for ``settings`` (read from the environment when not given).

    ``app.state.ctx`` is the ``WebContext`` (settings, store, DAGs, auth);
    ``app.state.store`` and ``app.state.settings`` are its parts.
    """
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from mlpipe.web import auth, problems
    from mlpipe.web.api.router import build_router as api_router

    settings = settings or load_settings()
    ctx = WebContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.store.dispose()

    app = FastAPI(title="mlpipe", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="mlpipe's REST API: Airflow 2.10's stable API shapes.")
    app.state.ctx = ctx
    app.state.settings = settings
    app.state.store = ctx.store
    app.add_middleware(WebBodyLimit, max_body_bytes=MAX_BODY_BYTES)
    problems.install(app)
    auth.install(app)
    app.include_router(api_router())

    _include_pages(app)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _include_pages(app: FastAPI) -> None:
    """The HTML pages (``mlpipe.web.pages``), when that module is part of this install."""
    try:
        from mlpipe.web.pages import build_router  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name != "mlpipe.web.pages":
            raise
        return
    app.include_router(build_router())
