"""Who is using this dashboard session: the signed-in user (st.login) with their role, else the local identity."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from core.auth import Actor, actor_for_claims, local_actor
from ui import resources

log = logging.getLogger(__name__)


def _claims() -> dict[str, Any] | None:
    """The signed-in user's ID-token claims, or None when nobody is signed in (or sign-in is off)."""
    try:
        if not getattr(st.user, "is_logged_in", False):
            return None
        return dict(st.user)
    except (AttributeError, KeyError, RuntimeError) as e:  # Streamlit without an auth config
        log.debug("no signed-in user: %s", e)
        return None


def current_actor() -> Actor:
    """The Actor this session acts as: the signed-in user with the role their claims map to
    (core.auth.role_for_claims), else local_actor(settings) (sign-in off: EMBEDSCOPE_ACTOR_*).
    A signed-in user whom no rule grants a role (EMBEDSCOPE_DEFAULT_ROLE=none) is told so and the
    script stops: they get nothing."""
    settings = resources.get_settings()
    claims = _claims()
    if claims is None:
        return local_actor(settings)
    actor = actor_for_claims(claims, settings)
    if actor is None:
        st.error("You are signed in, but your account has no role in this embedscope. Ask an admin to add "
                 "you to EMBEDSCOPE_ROLE_VIEWERS (or a group it names).", icon=":material/block:")
        st.stop()
    return actor
