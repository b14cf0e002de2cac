"""Roles in the dashboard (sign-in off: EMBEDSCOPE_ACTOR_*): the sidebar names who acts and their role,
and a viewer gets no Ingest button that core would refuse (core's refusals: tests/core/test_auth_enforced.py)."""

from __future__ import annotations

import pytest

from tests.app.conftest import Seeded, run_page


def _sidebar_text(at: object) -> str:
    return " ".join(c.value for c in at.sidebar.caption)  # type: ignore[attr-defined]


def test_a_viewer_sees_who_they_are_and_cannot_start_an_ingest(seeded_store: Seeded,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_NAME", "vic")
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_ROLE", "viewer")
    at = run_page("pages/1_Ingest.py").run()
    assert not at.exception
    assert "vic · viewer" in _sidebar_text(at)
    assert at.button(key="ing.run").disabled
    assert any("ingesting needs the editor role" in i.value for i in at.info)


def test_the_local_default_is_an_admin_who_may_ingest(seeded_store: Seeded) -> None:
    at = run_page("pages/1_Ingest.py").run()
    assert not at.exception
    assert "· admin" in _sidebar_text(at)
    assert not at.button(key="ing.run").disabled
