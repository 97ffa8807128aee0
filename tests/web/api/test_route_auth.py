"""Every route of the app needs a user (except /health, /login, /static): walked from the
route table, so a route added later without ``require_role`` fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from api_support import WebServer

from mlpipe.web.auth import OPEN_PATHS

ROLE_RANK = {"viewer": 0, "op": 1, "admin": 2}


def routes(app: Any) -> Iterator[tuple[str, set[str], Any]]:
    """``(path, methods, route)`` of every route, through included routers and prefixes."""

    def walk(items: list[Any], prefix: str) -> Iterator[tuple[str, set[str], Any]]:
        for route in items:
            if hasattr(route, "original_router"):  # FastAPI's included router
                yield from walk(route.original_router.routes,
                                prefix + route.include_context.prefix)
            elif hasattr(route, "path"):
                yield prefix + route.path, set(getattr(route, "methods", None) or {"GET"}), route

    yield from walk(list(app.routes), "")


def required_role(route: Any) -> str | None:
    """The role ``require_role`` demands of the route (the strongest, if several)."""
    found: list[str] = []

    def visit(dependant: Any) -> None:
        role = getattr(dependant.call, "mlpipe_role", None)
        if role:
            found.append(role)
        for sub in dependant.dependencies:
            visit(sub)

    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        visit(dependant)
    return max(found, key=ROLE_RANK.__getitem__) if found else None


def concrete(path: str) -> str:
    """A path with each ``{param}`` filled with a legal id."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if "number" in m.group(1) else "x", path)


def test_every_route_but_the_open_ones_needs_a_user_and_its_role(web: WebServer) -> None:
    checked = 0
    for path, methods, route in routes(web.app):
        if path.startswith(OPEN_PATHS):
            continue
        role = required_role(route)
        assert role is not None, f"{sorted(methods)} {path} does not depend on require_role()"
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            url = concrete(path)
            anonymous = web.call(method, url, None, json={})
            assert anonymous.status_code == 401, f"{method} {path}: {anonymous.status_code}"
            wrong = web.call(method, url, None, json={},
                             headers={"Authorization": "Bearer mlp_not-a-token"})
            assert wrong.status_code == 401, f"{method} {path} with a bad token"
            if role != "viewer":
                as_viewer = web.call(method, url, "viewer", json={})
                assert as_viewer.status_code == 403, f"{method} {path} as viewer"
            if role == "admin":
                assert web.call(method, url, "op", json={}).status_code == 403
            checked += 1
    assert checked >= 12  # the API alone has that many
    walked = {path for path, _, _ in routes(web.app)}
    assert {"/api/v1/datasets", "/api/v1/datasets/events", "/datasets"} <= walked


def test_the_open_routes_are_only_health_login_and_static(web: WebServer) -> None:
    open_routes = {path for path, _, route in routes(web.app) if required_role(route) is None}

    assert all(path.startswith(OPEN_PATHS) for path in open_routes), open_routes
    assert web.get("/health", None).status_code == 200
    assert web.get("/login", None).status_code == 200
