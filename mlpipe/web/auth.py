"""Who is asking, and may they: HTTP Basic, bearer tokens, session cookies, roles and CSRF.

Every route but ``/health``, ``/login`` and ``/static`` depends on ``require_role(ROLE)``
(``tests/web/test_route_auth.py`` walks the route table to keep it so). Credentials:

- ``Authorization: Basic`` (name and password) or ``Authorization: Bearer <token>``
  (``mlpipe users token NAME``) for API clients; wrong ones get 401 at once.
- the ``mlpipe_session`` cookie, set by ``POST /login``, for browsers. A state-changing
  request made with it must carry the session's CSRF token (the ``csrf_token`` form field
  or the ``X-CSRF-Token`` header); Basic and bearer requests need none (a browser never
  adds those on its own).

The login form itself carries a CSRF token (login CSRF: another site must not log a browser
in as the attacker): ``GET /login`` sets the ``mlpipe_login`` cookie (a random nonce) and puts
the nonce's HMAC in the form; ``POST /login`` without the matching token gets 403.

No credentials: 401 with ``WWW-Authenticate`` for the API, a redirect to
``/login?next=...`` for a browser asking for a page. Too low a role: 403. Failed logins
(form or Basic) are limited per name and address (``rate_limit.py``): 429.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mlpipe.web.accounts import User
from mlpipe.web.context import context
from mlpipe.web.passwords import role_rank
from mlpipe.web.problems import is_api, problem
from mlpipe.web.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    LOGIN_MAX_AGE_S,
    MAX_AGE_S,
    Session,
    fingerprint,
    new_login_nonce,
    same_token,
    valid_login_nonce,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Basic realm="mlpipe", charset="UTF-8"'
#: an ``Authorization`` header longer than this is refused before any decoding
MAX_CREDENTIALS = 4096
#: routes anyone may call (the route-table test checks every other one needs a user)
OPEN_PATHS = ("/health", "/api/v1/health", "/login", "/static")


class LoginRequired(HTTPException):
    """No credentials came with the request (401 for the API, a redirect for pages)."""

    def __init__(self) -> None:
        super().__init__(401, "authentication required: send HTTP Basic credentials or "
                              "'Authorization: Bearer <token>' (mlpipe users token NAME)",
                         headers={"WWW-Authenticate": REALM})


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": REALM})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def authenticate(request: Request) -> User:
    """The user making ``request``; ``LoginRequired`` or 401/429 ``HTTPException`` if none."""
    header = request.headers.get("authorization")
    if header is not None:
        return _from_header(request, header)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        ctx = context(request)
        session = ctx.sessions.loads(cookie)
        if session is not None:
            record = ctx.store.get_user(session.name)
            if record is not None and same_token(session.fingerprint,
                                                 fingerprint(record.password_hash)):
                request.state.session = session
                return User(record.name, record.role, "session")
    raise LoginRequired()


def _from_header(request: Request, header: str) -> User:
    ctx = context(request)
    if len(header) > MAX_CREDENTIALS:
        raise _unauthorized("the Authorization header is too long")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        record = ctx.passwords.user_of_token(value.strip())
        if record is None:
            raise _unauthorized("the bearer token is unknown or was revoked")
        return User(record.name, record.role, "bearer")
    if scheme.lower() != "basic":
        raise _unauthorized(f"unsupported authorization scheme {scheme[:20]!r}; use Basic or "
                            "Bearer")
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise _unauthorized("malformed Basic credentials: expected base64 of 'name:password'")
    address = client_address(request)
    wait = ctx.limiter.retry_after(name, address)
    if wait:
        raise HTTPException(429, f"too many failed logins for {name[:64]!r}; try again in "
                                 f"{wait} s", headers={"Retry-After": str(wait)})
    record = ctx.passwords.check(name, password)
    if record is None:
        ctx.limiter.failed(name, address)
        raise _unauthorized("wrong user name or password")
    ctx.limiter.succeeded(name, address)
    return User(record.name, record.role, "basic")


@cache
def require_role(role: str) -> Callable[[Request], Awaitable[User]]:
    """A dependency: the request's ``User`` if its role is ``role`` or stronger (else 403),
    with the CSRF token checked on state-changing requests made with a session cookie."""
    role_rank(role)  # an unknown role fails where the route is declared

    async def dependency(request: Request) -> User:
        user = await run_in_threadpool(authenticate, request)
        if not user.can(role):
            raise HTTPException(403, f"user {user.name!r} has role {user.role!r}; this needs "
                                     f"{role!r} or higher")
        await verify_csrf(request)
        return user

    dependency.mlpipe_role = role  # type: ignore[attr-defined]  # read by the route test
    return dependency


async def verify_csrf(request: Request) -> None:
    """403 unless a state-changing request made with a session carries its CSRF token."""
    session: Session | None = getattr(request.state, "session", None)
    if session is None or request.method in SAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not same_token(given, session.csrf):
        raise HTTPException(403, "the CSRF token is missing or wrong: reload the page and "
                                 "try again")


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session, for a ``csrf_token`` hidden field ('' if none)."""
    session: Session | None = getattr(request.state, "session", None)
    return session.csrf if session else ""


def install(app: FastAPI) -> None:
    """Browsers asking for a page without a session go to the login form."""
    async def on_login_required(request: Request, exc: Exception) -> Response:
        wants_page = (request.method == "GET" and not is_api(request)
                      and "text/html" in request.headers.get("accept", ""))
        if wants_page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        assert isinstance(exc, HTTPException)
        return problem(401, str(exc.detail), headers=dict(exc.headers or {}))

    app.add_exception_handler(LoginRequired, on_login_required)
    app.include_router(login_router())


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or len(target) > 2000:
        return "/"
    return target


def login_router() -> APIRouter:

    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        return _login_page(request, next, None, 200)

    @router.post("/login")
    def login(request: Request, username: Annotated[str, Form(max_length=200)],
              password: Annotated[str, Form(max_length=1024)],
              next: Annotated[str, Form(max_length=2000)] = "/",
              csrf_token: Annotated[str, Form(max_length=128)] = "") -> Response:
        ctx = context(request)
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not valid_login_nonce(nonce) or not same_token(
                csrf_token, ctx.sessions.login_token(str(nonce))):
            return _login_page(request, next, "The login form's CSRF token is missing or "
                                              "wrong: reload the login page and try again.",
                               403)
        address = client_address(request)
        wait = ctx.limiter.retry_after(username, address)
        if wait:
            return _login_page(request, next, f"Too many failed logins; try again in {wait} s.",
                               429, {"Retry-After": str(wait)})
        record = ctx.passwords.check(username, password)
        if record is None:
            ctx.limiter.failed(username, address)
            return _login_page(request, next, "Wrong user name or password.", 401)
        ctx.limiter.succeeded(username, address)
        value, _ = ctx.sessions.dumps(record.name, record.password_hash)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="lax")
        return response

    @router.post("/logout")
    def logout(user: Annotated[User, Depends(require_role("viewer"))]) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    return router


def _login_page(request: Request, next_url: str, message: str | None, status: int,
                headers: dict[str, str] | None = None) -> Response:
    """The login form (with ``message`` as its error), its CSRF token, and the login cookie
    the token belongs to (the browser's own when it has a well-formed one)."""
    from mlpipe.web.templating import templates

    nonce = request.cookies.get(LOGIN_COOKIE)
    fresh = not valid_login_nonce(nonce)
    if fresh:
        nonce = new_login_nonce()
    token = context(request).sessions.login_token(str(nonce))
    page: Response = templates().TemplateResponse(
        request, "login.html", {"next": safe_next(next_url), "error": message,
                                "login_csrf": token},
        status_code=status, headers=headers)
    if fresh:
        page.set_cookie(LOGIN_COOKIE, str(nonce), max_age=LOGIN_MAX_AGE_S, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/login")
    return page
