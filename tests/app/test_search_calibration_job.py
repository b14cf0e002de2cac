"""Search's calibration as a background job: the scores show at once, the "close match" verdict once it is measured."""

from __future__ import annotations

import pytest

import core.search.calibration
from core.jobs import DONE, jobs
from tests.app.conftest import Seeded, run_page
from tests.app.test_jobs_view import WAIT_S, HeldFits
from tests.app.test_search_page import PAGE, _result_ids, _texts
from ui import state

FOLLOWED = "_jobs.followed.search.calibration"  # ui.jobs_view's session key for the page's calibration job


def test_scores_show_while_the_space_is_calibrated_then_the_verdict(
        seeded_store: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "0")  # the page does not wait: it follows the job
    held = HeldFits(core.search.calibration.calibrate)
    monkeypatch.setattr(core.search.calibration, "calibrate", held)
    cat = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat")
    at = run_page(PAGE, timeout=WAIT_S)
    at.session_state[state.SEARCH_POSITIVE] = [cat]
    try:
        at.run()
        assert not at.exception, at.exception
        texts = _texts(at)
        assert "Score: cosine similarity to the example" in texts and _result_ids(at)  # the hits, scored
        assert "Best hit" not in texts and "No close match" not in texts and not at.warning
        job = jobs().get(at.session_state[FOLLOWED])
        assert job is not None and job.running and job.kind == "calibration"
        assert any("Measuring how close neighbours are" in str(p.proto.text) for p in at.get("progress"))
    finally:
        held.gate.set()
    assert job.wait(WAIT_S) and job.state == DONE, job.error
    at.run()  # what the follower's poll does once the job has ended
    assert not at.exception, at.exception
    assert "Best hit" in _texts(at) and held.calls == 1
