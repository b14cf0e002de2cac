"""The script-level sign-in gate: with sign-in on, a signed-out session sees only a sign-in page; a
signed-in one gets a sign-out entry in the sidebar. With sign-in off (a laptop) nothing changes.

ui.auth_gate already keeps anonymous clients away at the HTTP level under `python -m ui.serve`; this
layer also covers a plain `streamlit run Home.py` with an [auth] section in .streamlit/secrets.toml.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from ui.text import md

log = logging.getLogger(__name__)


def _auth_section() -> dict[str, Any]:
    """Streamlit's [auth] secrets ({} when there are none: sign-in off)."""
    if not st.secrets.load_if_toml_exists():
        return {}
    section: Any = st.secrets.get("auth")
    if section is None:
        return {}
    return dict(section.to_dict()) if hasattr(section, "to_dict") else dict(section)


def providers(section: dict[str, Any]) -> list[str]:
    """The st.login() provider names: "default" for a flat [auth] section, else each [auth.<name>]."""
    if section.get("client_id") or section.get("server_metadata_url"):
        return ["default"]
    return [name for name, value in section.items() if isinstance(value, dict) and value.get("client_id")]


def signin_enabled() -> bool:
    """True when Streamlit has an [auth] configuration (ui.serve's from EMBEDSCOPE_AUTH_*, or the user's)."""
    return bool(_auth_section())


def user_label() -> str:
    """Who is signed in, for display: the name claim, else the e-mail, else the subject."""
    for claim in ("name", "email", "preferred_username", "sub"):
        value = st.user.get(claim)
        if value:
            return str(value)
    return "signed in"


def _sign_in_page(names: list[str]) -> None:
    st.title("embedscope")
    st.info("This embedscope is shared by a team: sign in to continue.", icon=":material/lock:")
    for name in names or ["default"]:
        label = "Sign in" if name == "default" else f"Sign in with {name.capitalize()}"
        st.button(label, key=f"_signin_{name}", type="primary", icon=":material/login:",
                  on_click=st.login, args=(name,))


def require_signin() -> None:
    """Call before anything reads the store: stops the run at a sign-in page when sign-in is on and
    this session is not signed in; otherwise shows who is signed in and a sign-out button."""
    section = _auth_section()
    if not section:
        return
    if not st.user.is_logged_in:
        _sign_in_page(providers(section))
        st.stop()
    st.sidebar.caption(f"Signed in as **{md(user_label(), limit=80)}**")
    st.sidebar.button("Sign out", key="_signout", icon=":material/logout:", on_click=st.logout)
