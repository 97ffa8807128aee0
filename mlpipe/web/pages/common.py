"""What every page handler shares: the roles it needs, rendering, and errors as pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from mlpipe.errors import MlpipeError
from mlpipe.masking import redact
from mlpipe.web.accounts import User
from mlpipe.web.auth import require_role
from mlpipe.web.context import WebContext, context
from mlpipe.web.templating import templates
from mlpipe.web.views.states import LEGEND, abbreviation, css_class, label

Viewer = Annotated[User, Depends(require_role("viewer"))]
Op = Annotated[User, Depends(require_role("op"))]

F = TypeVar("F", bound=Callable[..., Response])


def render(request: Request, name: str, user: User | None, status: int = 200,
           **data: Any) -> Response:
    """The template ``name`` with the page's user and the shared filters."""
    env = templates().env
    if "state_label" not in env.filters:
        env.filters.update(state_label=label, state_class=css_class, when=when,
                           seconds=seconds, masked=redact, state_abbr=abbreviation)
        env.globals["state_legend"] = LEGEND
    response: Response = templates().TemplateResponse(request, name, {"user": user, **data},
                                                      status_code=status)
    return response


def page_errors(handler: F) -> F:
    """Answer an mlpipe error raised by a page (an unknown DAG, run or task) with an HTML
    page in the error's status (404, 400, 409) instead of the API's JSON."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except MlpipeError as exc:
            from mlpipe.web.problems import status_of

            request: Request = kwargs["request"]
            user = kwargs.get("user")
            return render(request, "pages/error.html", user, status_of(exc),
                          message=str(exc))

    return wrapper  # type: ignore[return-value]


def web(request: Request) -> WebContext:
    return context(request)


def when(moment: datetime | None) -> str:
    """A timestamp as pages show it: UTC, to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def seconds(value: float | None) -> str:
    """A duration: ``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def bounded(value: int, low: int, high: int) -> int:
    """``value`` clamped into [low, high] (paging arguments from the query string)."""
    return max(low, min(value, high))
