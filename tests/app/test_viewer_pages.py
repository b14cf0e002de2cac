"""A viewer on Compare and Review (sign-in off, EMBEDSCOPE_ACTOR_ROLE=viewer): a comparison nobody computed yet
is a gentle notice with no compute button; the review queue is browsed without its writing actions."""

from __future__ import annotations

import pytest

from tests.app.conftest import Seeded, run_page
from tests.app.test_curation_ui import Flipped, plant_flipped_labels


@pytest.fixture
def viewer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_NAME", "vic")
    monkeypatch.setenv("EMBEDSCOPE_ACTOR_ROLE", "viewer")


def test_a_viewer_sees_a_notice_for_a_comparison_never_computed(seeded_store: Seeded, viewer: None) -> None:
    at = run_page("pages/4_Compare.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("No comparison of" in i.value and "an editor or admin can compute it" in i.value for i in at.info)
    assert "compare.recompute" not in {b.key for b in at.button}


def test_a_viewer_browses_the_review_queue_but_cannot_write(seeded_store: Seeded, viewer: None) -> None:
    flipped = Flipped(seeded_store, plant_flipped_labels(seeded_store))
    at = run_page("pages/8_Review.py").run()
    at.selectbox(key="review.source").set_value("Likely mislabels").run()
    at.button(key="review.start").click().run()
    assert not at.exception, at.exception
    first = at.session_state["review.queue"].current
    assert first in flipped.flipped
    keys = {b.key for b in at.button}
    assert {"review.act.skip", "review.act.back"} <= keys
    assert not keys & {"review.act.accept", "review.act.keep", "review.act.set", "review.act.tag"}
    assert any("View only" in c.value for c in at.caption)
    assert not any("**a**" in c.value for c in at.caption)  # the key legend offers no writing key
    at.button(key="review.act.skip").click().run()  # browsing still works
    assert at.session_state["review.queue"].current != first
    at.button(key="review.act.back").click().run()
    assert at.session_state["review.queue"].current == first
