"""``GET /api/v1/users``: the users and their roles (admin only; never a hash)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlpipe.web.api.common import DEFAULT_LIMIT, Admin, Limit, Offset, iso
from mlpipe.web.context import context


def router() -> APIRouter:
    found = APIRouter(prefix="/api/v1", tags=["User"])

    @found.get("/users", summary="List users")
    def list_users(request: Request, _user: Admin, limit: Limit = DEFAULT_LIMIT,
                   offset: Offset = 0) -> Response:
        users = context(request).store.list_users()
        return JSONResponse({"users": [{"username": u.name, "first_name": "", "last_name": "",
                           "email": "", "active": True, "created_on": iso(u.created_at),
                           "roles": [{"name": u.role}]}
                          for u in users[offset:offset + limit]],
                "total_entries": len(users)})

    return found
