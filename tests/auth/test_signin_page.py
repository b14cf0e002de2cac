"""The script-level gate (ui.signin via setup_page) under AppTest: with Streamlit [auth] secrets a
signed-out session gets only a sign-in page (the store is never opened), a signed-in one the pages and a
sign-out button; without [auth] (a laptop) nothing changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.browser.conftest import ROOT

AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "embedscope", "client_secret": "s", "server_metadata_url": "http://127.0.0.1:1/.well-known"}


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import ui.page

    monkeypatch.setattr(ui.page, "warmup_started", True)  # no background numba compile in tests
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()  # releases (closes) the cached store


def _home(auth: dict[str, object] | None, user: dict[str, object]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    if auth is not None:
        at.secrets["auth"] = auth
    at.user = user
    return at.run()


def _sidebar_text(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.sidebar.caption)


def test_signed_out_session_gets_only_the_sign_in_page() -> None:
    at = _home(AUTH, {"is_logged_in": False})
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Store:" not in _sidebar_text(at)  # setup_page stopped before opening the store
    assert not at.sidebar.selectbox and not at.sidebar.multiselect


def test_named_providers_get_one_button_each() -> None:
    auth = {k: v for k, v in AUTH.items() if k in ("redirect_uri", "cookie_secret")}
    auth |= {"google": {"client_id": "g", "client_secret": "s", "server_metadata_url": "https://g/.well-known"},
             "keycloak": {"client_id": "k", "client_secret": "s", "server_metadata_url": "https://k/.well-known"}}
    at = _home(auth, {"is_logged_in": False})
    assert sorted(b.label for b in at.button) == ["Sign in with Google", "Sign in with Keycloak"]


def test_signed_in_session_sees_its_name_and_a_sign_out_button() -> None:
    at = _home(AUTH, {"is_logged_in": True, "name": "Alice *Example*", "email": "alice@example.com"})
    assert not at.exception
    sidebar = _sidebar_text(at)
    assert "Signed in as **Alice \\*Example\\*" in sidebar  # markdown in a name is escaped
    assert "Store:" in sidebar
    assert "Sign out" in [b.label for b in at.sidebar.button]
    assert "Sign in" not in [b.label for b in at.button]


def test_without_auth_secrets_nothing_changes() -> None:
    at = _home(None, {})
    assert not at.exception
    assert "Store:" in _sidebar_text(at)
    assert not [b for b in at.button if b.label in ("Sign in", "Sign out")]
