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
