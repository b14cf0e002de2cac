"""The HTTP-level sign-in gate: with sign-in on, nothing but health and the sign-in routes reaches a client
that has no valid Streamlit sign-in cookie.

Why here and not only in the pages: `st.user` is checked inside a script run, but Streamlit serves
/media/ files (thumbnails, downloads), uploads and the /_stcore/stream websocket to anyone, and the
app's HTML before any script runs. `streamlit run Home.py` offers no hook to add ASGI middleware (only
st.App does, which would replace the classic multipage runtime), so `install()` wraps the factory that
builds Streamlit's Starlette app, in the `python -m ui.serve` process only. The identity cookie is the
one Streamlit's own /oauth2callback sets (signed with [auth] cookie_secret), decoded with Streamlit's
own helpers, so the gate and st.user agree on who is signed in.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Open to anonymous clients (paths below server.baseUrlPath): the health check, and the sign-in routes.
OPEN_PATHS = ("_stcore/health", "auth/login", "auth/logout", "oauth2callback")
# Anonymous GETs of anything else but these prefixes are page loads: sent to the provider's sign-in.
NOT_PAGES = ("_stcore/", "media/", "static/", "component/", "app/static/")
# Close code for a refused websocket handshake (before accept the server answers HTTP 403).
POLICY_VIOLATION = 1008
# The deep link an anonymous page load asked for, replayed once after sign-in (Streamlit's callback lands on "/").
NEXT_COOKIE, NEXT_MAX_AGE_S, NEXT_MAX_LEN = "embedscope_next", 600, 2000


def signed_in(cookies: dict[str, str]) -> bool:
    """True when `cookies` hold a Streamlit identity cookie signed with this server's secret, for a
    signed-in user, issued for this deployment's origin (the redirect URI's)."""
    from streamlit.auth_util import get_cookie_with_chunks, get_origin_from_redirect_uri
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    secret = get_cookie_secret()

    def one(name: str) -> bytes | None:
        raw = cookies.get(name)
        # Cookies travel as latin-1 (HTTP); Streamlit signs the bytes the same way.
        return None if raw is None else decode_signed_value(secret, name, raw.encode("latin-1"))

    value = get_cookie_with_chunks(one, USER_COOKIE_NAME)
    if value is None:
        return False
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(payload, dict) and payload.get("is_logged_in") is True
            and payload.get("origin") == get_origin_from_redirect_uri())


def login_providers() -> list[str]:
    """The st.login() provider names of Streamlit's [auth] secrets ("default" for ours)."""
    from streamlit.auth_util import get_secrets_auth_section

    from ui.signin import providers

    return providers(get_secrets_auth_section().to_dict()) or ["default"]


def _choice_page(links: dict[str, str]) -> str:
    """A bare page with one sign-in link per provider (several [auth.<name>] sections): no app content."""
    items = "".join(f'<li><a href="{html.escape(url)}">Sign in with {html.escape(name.capitalize())}</a></li>'
                    for name, url in links.items())
    return f"<!doctype html><title>Sign in · embedscope</title><h1>embedscope</h1><ul>{items}</ul>"


def safe_next(url: str | None, prefix: str) -> str | None:
    """`url` when it is a relative URL below `prefix` (the base path) fit to redirect to, else None: no scheme
    or host, no "//" or backslash (browsers read both as another host), printable ASCII, at most NEXT_MAX_LEN."""
    if not url or len(url) > NEXT_MAX_LEN or not url.startswith(prefix) or "//" in url or "\\" in url:
        return None
    return url if all(33 <= ord(c) < 127 for c in url) else None


def _wanted(scope: Scope) -> str:
    """The request's path and query as sent (still percent-encoded)."""
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


class SignInGate:
    """ASGI middleware: anonymous page loads go to /auth/login, other anonymous requests get 401 and
    anonymous websockets are refused; signed-in clients and OPEN_PATHS pass untouched."""

    def __init__(self, app: ASGIApp, base_url: str = "") -> None:
        self.app = app
        self.prefix = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"

    def _relative(self, path: str) -> str | None:
        """`path` below the base URL (without the leading "/"), None when outside it."""
        if path == self.prefix.rstrip("/"):
            return ""
        return path[len(self.prefix):] if path.startswith(self.prefix) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        from starlette.requests import HTTPConnection

        relative = self._relative(scope["path"])
        cookies = dict(HTTPConnection(scope).cookies)
        if relative in OPEN_PATHS or signed_in(cookies):
            if relative == "" and scope["type"] == "http" and NEXT_COOKIE in cookies:
                await self._resume(scope, receive, send, cookies[NEXT_COOKIE])
                return
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send, relative)

    async def _resume(self, scope: Scope, receive: Receive, send: Send, cookie: str) -> None:
        """The first signed-in load of the base path after a deep link: there, once (the cookie is cleared)."""
        from urllib.parse import unquote

        from starlette.responses import RedirectResponse

        target = safe_next(unquote(cookie), self.prefix)
        response = RedirectResponse(target or self.prefix, status_code=302)
        response.headers["Cache-Control"] = "no-store"
        response.delete_cookie(NEXT_COOKIE, path=self.prefix, httponly=True, samesite="lax")
        await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, relative: str | None) -> None:
        from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse

        if scope["type"] == "websocket":
            log.debug("refused an anonymous websocket to %s", scope["path"])
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        page = (scope["method"] in ("GET", "HEAD") and relative is not None
                and not relative.startswith(NOT_PAGES))
        if page:
            from streamlit.auth_util import encode_provider_token

            # Streamlit's /auth/login wants a short-lived signed token naming the provider (st.login's).
            links = {name: f"{self.prefix}auth/login?provider={quote(encode_provider_token(name))}"
                     for name in login_providers()}
            response: Any = (RedirectResponse(next(iter(links.values())), status_code=302) if len(links) == 1
                             else HTMLResponse(_choice_page(links), status_code=401))
            wanted = safe_next(_wanted(scope), self.prefix)
            if wanted is not None and relative:  # a deep link (not the base path): replayed after sign-in
                response.set_cookie(NEXT_COOKIE, quote(wanted, safe=""), max_age=NEXT_MAX_AGE_S, path=self.prefix,
                                    httponly=True, samesite="lax", secure=scope.get("scheme") == "https")
        else:
            response = PlainTextResponse("Sign in first.", status_code=401)
        response.headers["Cache-Control"] = "no-store"
        await response(scope, receive, send)


def install() -> None:
    """Wrap Streamlit's Starlette app factory so every app it builds in this process is gated.

    Raises RuntimeError when this Streamlit has no such factory (a new release moved it): sign-in on
    without the gate would serve thumbnails to anyone, so the server must not start.
    """
    from streamlit import config
    from streamlit.web.server.starlette import starlette_server

    original = getattr(starlette_server, "create_starlette_app", None)
    if original is None:
        raise RuntimeError("this Streamlit has no starlette_server.create_starlette_app: the sign-in gate "
                           "cannot be installed (pin the tested Streamlit version)")
    if getattr(original, "_embedscope_gated", False):
        return

    def gated(runtime: Any) -> Any:
        return SignInGate(original(runtime), config.get_option("server.baseUrlPath") or "")

    gated._embedscope_gated = True  # type: ignore[attr-defined]
    starlette_server.create_starlette_app = gated
    log.info("sign-in gate installed: anonymous clients get no page, media, upload or websocket")
