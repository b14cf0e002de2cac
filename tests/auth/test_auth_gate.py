"""ui.auth_gate.SignInGate in process (Starlette's TestClient around a stand-in app): which cookie lets a
request through, what an anonymous client gets, the base URL path, and a choice of providers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from streamlit.runtime.secrets import AttrDict

from ui.auth_gate import POLICY_VIOLATION, SignInGate

ORIGIN = "https://embedscope.example.com"
SECRET_PAGE = "rows of the private dataset"


async def _page(request: Any) -> PlainTextResponse:
    return PlainTextResponse(SECRET_PAGE)


async def _stream(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(SECRET_PAGE)
    await websocket.close()


INNER = Starlette(routes=[Route("/{path:path}", _page, methods=["GET", "PUT"]), WebSocketRoute("/ws", _stream)])


@pytest.fixture
def auth_section(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Streamlit's [auth] secrets as the gate sees them (edit the dict in a test)."""
    import streamlit.auth_util

    section: dict[str, Any] = {"redirect_uri": f"{ORIGIN}/oauth2callback", "cookie_secret": "x" * 40,
                               "client_id": "embedscope", "client_secret": "s",
                               "server_metadata_url": "https://sso.example.com/.well-known/openid-configuration"}
    monkeypatch.setattr(streamlit.auth_util, "get_secrets_auth_section", lambda: AttrDict(section))
    return section


def _cookie(**payload: Any) -> dict[str, str]:
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    value = json.dumps({"email": "alice@example.com", "is_logged_in": True, "origin": ORIGIN, **payload})
    return {"_streamlit_user": create_signed_value(get_cookie_secret(), "_streamlit_user", value).decode()}


def _client(base_url: str = "", cookies: dict[str, str] | None = None) -> TestClient:
    return TestClient(SignInGate(INNER, base_url), follow_redirects=False, cookies=cookies)


def test_a_valid_sign_in_cookie_passes(auth_section: dict[str, Any]) -> None:
    client = _client(cookies=_cookie())
    assert client.get("/media/x.png").text == SECRET_PAGE
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == SECRET_PAGE


@pytest.mark.parametrize("payload", [{"is_logged_in": False}, {"origin": "https://evil.example.com"}])
def test_a_signed_cookie_that_is_not_a_sign_in_here_is_refused(auth_section: dict[str, Any],
                                                               payload: dict[str, Any]) -> None:
    response = _client(cookies=_cookie(**payload)).get("/")
    assert response.status_code == 302 and SECRET_PAGE not in response.text


def test_anonymous_clients_get_nothing_but_health_and_sign_in(auth_section: dict[str, Any]) -> None:
    client = _client()
    assert client.get("/Explore").headers["location"].startswith("/auth/login?provider=")
    for path in ("/media/x.png", "/_stcore/host-config", "/static/app.js"):
        response = client.get(path)
        assert (response.status_code, response.text) == (401, "Sign in first.")
    assert client.put("/_stcore/upload_file/s/f").status_code == 401
    for path in ("/_stcore/health", "/auth/login", "/auth/logout", "/oauth2callback"):
        assert client.get(path).text == SECRET_PAGE  # the stand-in app answers the open routes
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.code == POLICY_VIOLATION


def test_base_url_path(auth_section: dict[str, Any]) -> None:
    client = _client("team/embedscope")
    assert client.get("/team/embedscope/_stcore/health").text == SECRET_PAGE
    assert client.get("/team/embedscope").headers["location"].startswith("/team/embedscope/auth/login?")
    assert client.get("/_stcore/health").status_code == 401  # outside the base path: not an open route


def test_several_providers_get_a_bare_choice_page(auth_section: dict[str, Any]) -> None:
    for key in ("client_id", "client_secret", "server_metadata_url"):
        del auth_section[key]
    auth_section["google"] = {"client_id": "g", "client_secret": "s", "server_metadata_url": "https://g"}
    auth_section["keycloak"] = {"client_id": "k", "client_secret": "s", "server_metadata_url": "https://k"}
    response = _client().get("/")
    assert response.status_code == 401 and SECRET_PAGE not in response.text
    assert "Sign in with Google" in response.text and "Sign in with Keycloak" in response.text
    assert response.text.count('href="/auth/login?provider=') == 2


def _next_cookie(response: Any) -> str | None:
    """The deep-link cookie a response sets (its whole Set-Cookie header), None when it sets none."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith("embedscope_next=")]
    return headers[0] if headers else None


def test_a_deep_link_is_replayed_once_after_sign_in(auth_section: dict[str, Any]) -> None:
    from urllib.parse import quote

    anonymous = _client("team/embedscope").get("/team/embedscope/Explore?project=demo%20one&space=clip")
    assert anonymous.headers["location"].startswith("/team/embedscope/auth/login?")
    header = _next_cookie(anonymous)
    assert header is not None
    assert "HttpOnly" in header and "SameSite=lax" in header and "Max-Age=600" in header
    assert "Path=/team/embedscope/" in header
    value = header.split(";")[0].split("=", 1)[1]
    signed = _client("team/embedscope", cookies={**_cookie(), "embedscope_next": value})
    back = signed.get("/team/embedscope/")
    assert back.status_code == 302
    assert back.headers["location"] == "/team/embedscope/Explore?project=demo%20one&space=clip"
    cleared = _next_cookie(back)
    assert cleared is not None and "Max-Age=0" in cleared  # once: the cookie is cleared
    assert signed.get("/team/embedscope/Explore").text == SECRET_PAGE  # other pages are not redirected
    assert quote("/team/embedscope/Explore", safe="") in value
    assert _next_cookie(_client().get("/")) is None  # the base path itself: nothing to replay


@pytest.mark.parametrize("wanted", ["https://evil.example.com/", "//evil.example.com/x", "/\\evil.example.com",
                                    "/Explore//evil", "javascript:alert(1)", "/x" * 1200, "/a b", "Explore"])
def test_an_open_redirect_through_the_cookie_is_refused(auth_section: dict[str, Any], wanted: str) -> None:
    from urllib.parse import quote

    client = _client(cookies={**_cookie(), "embedscope_next": quote(wanted, safe="")})
    response = client.get("/")
    assert (response.status_code, response.headers["location"]) == (302, "/")  # home, the cookie cleared
    assert "Max-Age=0" in (_next_cookie(response) or "")


def test_a_deep_link_outside_the_base_path_is_not_kept(auth_section: dict[str, Any]) -> None:
    from ui.auth_gate import safe_next

    assert safe_next("/other/Explore", "/team/embedscope/") is None
    assert safe_next("/team/embedscope/Explore?project=a", "/team/embedscope/") == "/team/embedscope/Explore?project=a"
    assert _next_cookie(_client().get("/Explore//evil.example.com")) is None
