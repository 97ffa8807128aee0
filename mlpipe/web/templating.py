"""The Jinja2 templates of ``mlpipe/web/templates`` (autoescaped), with ``csrf_token``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


@cache
def templates() -> Any:
    """The shared ``Jinja2Templates``; templates call ``csrf_token(request)``."""
    from fastapi.templating import Jinja2Templates

    from mlpipe.web.auth import csrf_token

    found = Jinja2Templates(directory=str(TEMPLATES))
    found.env.globals["csrf_token"] = csrf_token
    return found
