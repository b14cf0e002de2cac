"""Sign-in on, against a real OIDC provider: an anonymous raw HTTP or websocket client gets no page,
thumbnail, upload or websocket data; Chromium signs in through the provider's login form, sees the
dashboard with the user's name, its cookie then opens pages and thumbnails, and signing out ends that."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.auth.conftest import ALICE
from tests.browser.conftest import UI_TIMEOUT_MS, Server, wait_idle

pytestmark = pytest.mark.browser

USER_COOKIE = "_streamlit_user"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # hand the 3xx back to the caller instead of following it


def fetch(url: str, method: str = "GET", cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw request, redirects not followed, no cookie jar: (status, headers, body)."""
    request = urllib.request.Request(url, method=method, data=b"x" if method in ("POST", "PUT") else None)
    if cookie:
        request.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ws_url(server: Server) -> str:
    return server.url.replace("http://", "ws://") + "/_stcore/stream"


def forged_cookie(server: Server) -> str:
    """An identity cookie that claims a signed-in user but is signed with the wrong secret."""
    from itsdangerous import URLSafeTimedSerializer

    payload = json.dumps({**ALICE, "is_logged_in": True, "origin": server.url, "provider": "default"})
    return f"{USER_COOKIE}={URLSafeTimedSerializer('not-the-secret', salt=USER_COOKIE).dumps(payload)}"


@pytest.mark.parametrize("path", ["/", "/Explore", "/Search?project=signin", "/index.html"])
def test_anonymous_page_load_is_sent_to_sign_in_without_content(signin_server: Server, path: str) -> None:
    for cookie in (None, forged_cookie(signin_server)):
        status, headers, body = fetch(signin_server.url + path, cookie=cookie)
        assert status == 302, (path, status, body[:200])
        assert headers["location"].startswith("/auth/login?provider=")
        assert body == b""
        # A deep link is kept (HttpOnly) for the first page after sign-in; the base path itself is not.
        assert ("embedscope_next=" in headers.get("set-cookie", "")) == (path != "/")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/media/0123456789abcdef0123456789abcdef.png"),
    ("GET", "/static/js/index.js"),
    ("GET", "/_stcore/host-config"),
    ("PUT", "/_stcore/upload_file/some-session/some-file"),
    ("POST", "/_stcore/agent/interact"),
    ("GET", "/component/anything/index.html"),
])
def test_anonymous_media_upload_and_internals_get_401(signin_server: Server, method: str, path: str) -> None:
    status, _, body = fetch(signin_server.url + path, method=method)
    assert status == 401, (path, status, body[:200])
    assert body == b"Sign in first."


def test_health_and_the_sign_in_route_stay_open(signin_server: Server, oidc_provider: str) -> None:
    assert fetch(signin_server.url + "/_stcore/health")[0] == 200
    _, headers, _ = fetch(signin_server.url + "/")
    status, headers, _ = fetch(signin_server.url + headers["location"])
    assert status == 302 and headers["location"].startswith(f"{oidc_provider}/oauth2/authorize?")


def test_anonymous_websocket_is_refused(signin_server: Server) -> None:
    for cookie in (None, forged_cookie(signin_server)):
        headers = {"Cookie": cookie} if cookie else None
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(signin_server), subprotocols=["streamlit"],  # type: ignore[list-item]
                    additional_headers=headers, open_timeout=30)
        assert refused.value.response.status_code == 403


def _sign_in(page: Any, server: Server, provider: str) -> None:
    page.goto(server.url + "/")
    page.wait_for_url(f"{provider}/oauth2/authorize*")  # the gate sent us to the provider
    page.get_by_role("button", name=ALICE["sub"], exact=True).click()  # the mock's one-click login
    page.wait_for_url(f"{server.url}/")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Signed in as {ALICE['name']}").wait_for()


def test_sign_in_through_chromium_opens_pages_media_and_the_websocket(
        signin_server: Server, oidc_provider: str, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        _sign_in(page, signin_server, oidc_provider)
        wait_idle(page)
        # The provider's groups claim made her a viewer (default role "none": only the rule lets her in).
        # (ui.text.md puts a word joiner before "@" so the e-mail is not auto-linked.)
        user, domain = ALICE["email"].split("@")
        page.locator('[data-testid="stSidebar"]').get_by_text(
            re.compile(rf"{re.escape(user)}\u2060?@{re.escape(domain)} · viewer")).wait_for()
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        assert USER_COOKIE in cookies
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())

        # The cookie opens pages for a raw client too, and the websocket.
        status, _, body = fetch(signin_server.url + "/Search", cookie=cookie)
        assert status == 200 and b"<html" in body.lower()
        with connect(ws_url(signin_server), subprotocols=["streamlit"],  # type: ignore[list-item]
                     additional_headers={"Cookie": cookie, "Origin": signin_server.url}, open_timeout=30):
            pass

        # A thumbnail the signed-in page shows is served to it, and to nobody without the cookie.
        page.goto(signin_server.url + "/Search")
        image = page.locator('[data-testid="stImage"] img').first
        image.wait_for()
        src = image.get_attribute("src")
        assert src and "/media/" in src
        media = src if src.startswith("http") else signin_server.url + src
        assert context.request.get(media).status == 200
        status, _, body = fetch(media)
        assert status == 401 and body == b"Sign in first."

        # Signing out clears the identity cookie: the next page load is sent to sign in again.
        page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click()
        page.wait_for_url(lambda url: not url.startswith(f"{signin_server.url}/Search"))
        assert USER_COOKIE not in {c["name"] for c in context.cookies()}
        left = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        assert fetch(signin_server.url + "/Search", cookie=left or None)[0] == 302
    finally:
        context.close()
