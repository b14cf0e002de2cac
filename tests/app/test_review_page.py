"""The Review page through AppTest: a queue of the likely mislabels, stepped through with keep, back, accept
and skip; the store keeps what was done (reviewed flag, accepted label, a history entry)."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import Seeded, run_page
from tests.app.test_curation_ui import Flipped, payload, plant_flipped_labels

PAGE = "pages/8_Review.py"


@pytest.fixture
def flipped(seeded_store: Seeded) -> Flipped:
    return Flipped(seeded_store, plant_flipped_labels(seeded_store))


def _position(at: AppTest) -> tuple[int, int]:
    """(n, total) of the "n of total" progress text."""
    text = at.get("progress")[0].proto.text
    match = re.match(r"([\d,]+) of ([\d,]+)", text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


def _current(at: AppTest) -> str:
    return at.session_state["review.queue"].current


def test_review_queue_keep_back_accept_skip(flipped: Flipped) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    at.selectbox(key="review.source").set_value("Likely mislabels").run()
    at.button(key="review.start").click().run()
    assert not at.exception, at.exception
    n, total = _position(at)
    assert n == 1 and total >= len(flipped.flipped)
    first = _current(at)
    assert first in flipped.flipped  # the planted flips rank first
    assert any("suggested label" in m.value for m in at.markdown)  # scores with their explanation
    assert len(at.get("image")) >= 1 + 4  # the item large and its neighbours

    at.button(key="review.act.keep").click().run()  # k: keep the label, mark it reviewed
    assert _position(at)[0] == 2
    second = _current(at)
    at.button(key="review.act.back").click().run()  # b: back to the first
    assert _position(at)[0] == 1 and _current(at) == first
    assert any("Already kept" in c.value for c in at.caption)
    at.button(key="review.act.skip").click().run()  # s: no change
    assert _current(at) == second
    accept = at.button(key="review.act.accept")
    assert not accept.disabled and "cat" in accept.label
    accept.click().run()  # a: accept the suggestion
    assert not at.exception, at.exception
    assert _position(at)[0] == 3

    assert payload(flipped.seeded, first)["reviewed"] is True
    assert payload(flipped.seeded, first)["label"] == "dog"  # kept
    assert payload(flipped.seeded, second)["label"] == "cat"  # accepted
    assert payload(flipped.seeded, second)["original_label"] == "dog"


def test_a_new_queue_leaves_out_reviewed_items(flipped: Flipped) -> None:
    at = run_page(PAGE).run()
    at.selectbox(key="review.source").set_value("Likely mislabels").run()
    at.button(key="review.start").click().run()
    total = _position(at)[1]
    at.button(key="review.act.keep").click().run()
    at.button(key="review.start").click().run()  # a fresh queue of the same list
    assert _position(at) == (1, total - 1)


def test_nothing_to_review_explains_itself(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("Nothing to review yet" in i.value for i in at.info)


def test_a_new_queue_leaves_out_relabeled_items(flipped: Flipped) -> None:
    """An accepted suggestion counts as corrected (core.curation.corrected), like a kept label."""
    at = run_page(PAGE).run()
    at.selectbox(key="review.source").set_value("Likely mislabels").run()
    at.button(key="review.start").click().run()
    total = _position(at)[1]
    first = _current(at)
    at.button(key="review.act.accept").click().run()
    assert payload(flipped.seeded, first).get("reviewed") is not True  # relabeled, not marked reviewed
    at.button(key="review.start").click().run()
    assert _position(at) == (1, total - 1) and first not in at.session_state["review.queue"].ids


def test_the_queue_can_go_on_past_the_cut_off(flipped: Flipped) -> None:
    at = run_page(PAGE).run()
    at.selectbox(key="review.source").set_value("Likely mislabels").run()
    at.button(key="review.start").click().run()
    flagged = _position(at)[1]
    at.checkbox(key="review.past.mislabel").check().run()
    at.button(key="review.start").click().run()
    assert not at.exception, at.exception
    n, total = _position(at)
    assert n == 1 and total > flagged  # the ranking goes on after the items that passed the cut-off
    assert _current(at) in flipped.flipped  # still the most likely first
