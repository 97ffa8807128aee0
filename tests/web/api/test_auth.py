"""Auth over real HTTP: Basic, bearer, the session cookie and its CSRF token, roles, login
rate limiting, redirects to the login form."""

from __future__ import annotations

import re
from typing import Annotated

import requests
from api_support import PASSWORDS, WebServer
from fastapi import Depends
from starlette.responses import HTMLResponse

from mlpipe.web.accounts import User
from mlpipe.web.auth import require_role
from mlpipe.web.passwords import hash_password
from mlpipe.web.sessions import COOKIE

PAUSE = "/api/v1/dags/nothing?update_mask=is_paused"


def login_csrf(html: str) -> str:
    """The CSRF token of a login form page."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "the login form has no CSRF token"
    return found.group(1)


def log_in(web: WebServer, name: str, password: str | None = None,
           next_url: str = "/") -> tuple[requests.Session, requests.Response]:
    """Log in as a browser does: load the form (its cookie and token), then post it."""
    session = requests.Session()
    form = session.get(f"{web.url}/login", timeout=30)
    response = session.post(f"{web.url}/login", allow_redirects=False, timeout=30, data={
        "username": name, "password": password or PASSWORDS[name], "next": next_url,
        "csrf_token": login_csrf(form.text)})
    return session, response


def csrf_of(web: WebServer, session: requests.Session) -> str:
    decoded = web.app.state.ctx.sessions.loads(session.cookies[COOKIE])
    assert decoded is not None
    return str(decoded.csrf)


def test_basic_and_bearer_credentials_are_checked(web: WebServer) -> None:
    right = web.get("/api/v1/dags", None, auth=("viewer", PASSWORDS["viewer"]))
    wrong = web.get("/api/v1/dags", None, auth=("viewer", "not-it"))
    nobody = web.get("/api/v1/dags", None, auth=("nobody", "whatever1"))
    token = web.get("/api/v1/dags", None,
                    headers={"Authorization": f"Bearer {web.tokens['viewer']}"})
    bad_token = web.get("/api/v1/dags", None, headers={"Authorization": "Bearer mlp_x"})
    odd_scheme = web.get("/api/v1/dags", None, headers={"Authorization": "Digest abc"})
    garbage = web.get("/api/v1/dags", None, headers={"Authorization": "Basic %%%"})
    huge = web.get("/api/v1/dags", None, headers={"Authorization": "Basic " + "A" * 9000})

    assert right.status_code == 200 and token.status_code == 200
    for response in (wrong, nobody, bad_token, odd_scheme, garbage, huge):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert set(response.json()) == {"detail", "status", "title", "type"}


def test_five_failed_logins_a_minute_then_429_for_that_name(web: WebServer) -> None:
    codes = [web.get("/api/v1/dags", None, auth=("op", "wrong-pass")).status_code
             for _ in range(6)]
    right_password_now = web.get("/api/v1/dags", None, auth=("op", PASSWORDS["op"]))
    other_user = web.get("/api/v1/dags", None, auth=("viewer", PASSWORDS["viewer"]))
    _, form = log_in(web, "op", "wrong-again")

    assert codes == [401] * 5 + [429]
    assert right_password_now.status_code == 429
    assert int(right_password_now.headers["Retry-After"]) > 0
    assert other_user.status_code == 200
    assert form.status_code == 429 and "Too many failed logins" in form.text


def test_login_sets_a_private_cookie_that_authenticates(web: WebServer) -> None:
    session, response = log_in(web, "viewer", next_url="/api/v1/dags")
    cookie = response.headers["set-cookie"]

    assert response.status_code == 303 and response.headers["location"] == "/api/v1/dags"
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1
    assert session.get(f"{web.url}/api/v1/dags").status_code == 200


def test_a_wrong_password_on_the_form_shows_the_form_again(web: WebServer) -> None:
    session, response = log_in(web, "viewer", "wrong-one")

    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert COOKIE not in session.cookies


def test_login_never_redirects_off_the_site(web: WebServer) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        _, response = log_in(web, "viewer", next_url=target)
        assert response.headers["location"] == "/"


def test_a_cookie_request_that_changes_state_needs_the_csrf_token(web: WebServer) -> None:
    session, _ = log_in(web, "op")

    without = session.patch(f"{web.url}{PAUSE}", json={"is_paused": True})
    wrong = session.patch(f"{web.url}{PAUSE}", json={"is_paused": True},
                          headers={"X-CSRF-Token": "guess"})
    right = session.patch(f"{web.url}{PAUSE}", json={"is_paused": True},
                          headers={"X-CSRF-Token": csrf_of(web, session)})
    by_token = web.call("PATCH", PAUSE, "op", json={"is_paused": True})

    assert without.status_code == 403 and "CSRF" in without.json()["detail"]
    assert wrong.status_code == 403
    assert right.status_code == 404  # past auth and CSRF: the DAG does not exist
    assert by_token.status_code == 404  # a bearer token needs no CSRF token


def test_the_csrf_token_also_comes_as_a_form_field(web: WebServer) -> None:
    session, _ = log_in(web, "viewer")

    without = session.post(f"{web.url}/logout", allow_redirects=False)
    with_field = session.post(f"{web.url}/logout", allow_redirects=False,
                              data={"csrf_token": csrf_of(web, session)})

    assert without.status_code == 403
    assert with_field.status_code == 303 and with_field.headers["location"] == "/login"
    assert COOKIE not in session.cookies


def test_a_forged_cookie_or_a_changed_password_ends_the_session(web: WebServer) -> None:
    session, _ = log_in(web, "viewer")
    forged = requests.Session()
    forged.cookies.set(COOKIE, session.cookies[COOKIE][:-3] + "abc")

    assert forged.get(f"{web.url}/api/v1/dags").status_code == 401
    web.store.set_password_hash("viewer", hash_password("a-new-password"))
    assert session.get(f"{web.url}/api/v1/dags").status_code == 401


def test_a_browser_without_a_session_is_sent_to_the_login_form(web: WebServer) -> None:
    @web.app.get("/only-for-this-test")
    def page(_user: Annotated[User, Depends(require_role("viewer"))]) -> HTMLResponse:
        return HTMLResponse("<p>hello</p>")

    browser = web.get("/only-for-this-test?x=1", None, headers={"Accept": "text/html"})
    script = web.get("/only-for-this-test", None, headers={"Accept": "application/json"})
    api = web.get("/api/v1/dags", None, headers={"Accept": "text/html"})
    session, _ = log_in(web, "viewer")

    assert browser.status_code == 303
    assert browser.headers["location"] == "/login?next=%2Fonly-for-this-test%3Fx%3D1"
    assert script.status_code == 401 and api.status_code == 401
    assert session.get(f"{web.url}/only-for-this-test").text == "<p>hello</p>"


def test_roles_order_viewer_below_op_below_admin(web: WebServer) -> None:
    assert [web.get("/api/v1/users", role).status_code for role in ("viewer", "op", "admin")] \
        == [403, 403, 200]
    users = web.get("/api/v1/users", "admin").json()
    assert {u["username"]: u["roles"] for u in users["users"]} == {
        "admin": [{"name": "admin"}], "op": [{"name": "op"}], "viewer": [{"name": "viewer"}]}
    assert "hash" not in str(users) and "argon2" not in str(users)


def test_the_login_form_needs_its_csrf_token(web: WebServer) -> None:
    data = {"username": "viewer", "password": PASSWORDS["viewer"], "next": "/"}
    bare = requests.post(f"{web.url}/login", data=data, allow_redirects=False, timeout=30)
    browser = requests.Session()
    form = browser.get(f"{web.url}/login", timeout=30)
    token = login_csrf(form.text)
    wrong = browser.post(f"{web.url}/login", data={**data, "csrf_token": "0" * len(token)},
                         allow_redirects=False, timeout=30)
    # a token from another browser's form does not fit this browser's login cookie
    other = requests.Session()
    other_token = login_csrf(other.get(f"{web.url}/login", timeout=30).text)
    foreign = browser.post(f"{web.url}/login", data={**data, "csrf_token": other_token},
                           allow_redirects=False, timeout=30)
    right = browser.post(f"{web.url}/login", data={**data, "csrf_token": token},
                         allow_redirects=False, timeout=30)

    login_cookie = form.headers["set-cookie"]
    assert "mlpipe_login=" in login_cookie and "HttpOnly" in login_cookie
    for refused in (bare, wrong, foreign):
        assert refused.status_code == 403, refused.status_code
        assert "CSRF token is missing or wrong" in refused.text
        assert COOKIE + "=" not in refused.headers.get("set-cookie", "")
    assert right.status_code == 303 and COOKIE + "=" in right.headers["set-cookie"]
    # the API's Basic and bearer credentials need no token
    assert web.get("/api/v1/dags", None, auth=("viewer", PASSWORDS["viewer"])).status_code == 200
    assert web.get("/api/v1/dags").status_code == 200
