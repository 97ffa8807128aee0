"""The web UI's HTML pages: server-rendered Jinja2 templates, htmx for the small live parts.

``build_router()`` is included by ``mlpipe.web.app.create_app``. Each page reads what the
API reads (the store's repositories, ``scheduler.run_control``) and hands it to the pure
view builders of ``mlpipe.web.views``; every route needs a user (``require_role``), and
changing routes need ``op`` plus the session's CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["build_router"]


def build_router() -> APIRouter:
    """Every page route (DAG list, grid, graph, run, task instance, trigger, clear, mark,
    datasets)."""
    from mlpipe.web.pages import actions, dags, datasets, grid, runs, trigger

    router = APIRouter(include_in_schema=False)
    for module in (dags, grid, runs, trigger, actions, datasets):
        module.register(router)
    return router
