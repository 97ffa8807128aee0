"""The Datasets page: each dataset's last update, producers and consumers, and the recent
events with the keys they changed and the runs they triggered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from mlpipe.web.api.datasets import runs_created_by
from mlpipe.web.pages.common import Viewer, page_errors, render, web

#: events the page lists (newest first)
RECENT_EVENTS = 50


def register(router: APIRouter) -> None:
    router.add_api_route("/datasets", datasets_page, methods=["GET"])


@page_errors
def datasets_page(request: Request, user: Viewer,
                  uri: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """Every dataset; the newest events (of one dataset with ``uri``)."""
    ctx = web(request)
    summaries = ctx.store.list_datasets()
    events, total = ctx.store.page_dataset_events(limit=RECENT_EVENTS, uri=uri or None)
    consumers = {s.uri: s.consuming_dags for s in summaries}
    return render(request, "pages/datasets.html", user, datasets=summaries, events=events,
                  total_events=total, uri=uri,
                  created=runs_created_by(ctx, events, consumers))
