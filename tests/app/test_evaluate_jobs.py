"""The Evaluate page's scorecard as a background job: two sessions asking for it share one computation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

import core.pipeline.evaluate
from core.jobs import DONE, Job, jobs
from tests.app.conftest import Seeded, run_page
from tests.app.test_jobs_view import WAIT_S, HeldFits

PAGE = "pages/6_Evaluate.py"
FOLLOWED = "_jobs.followed.evaluate.scorecard"  # ui.jobs_view's session key for the page's scorecard job


@pytest.fixture
def held(seeded_store: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldFits]:
    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "0")  # the page does not wait: it follows the job
    scoring = HeldFits(core.pipeline.evaluate.evaluate_spaces)
    monkeypatch.setattr(core.pipeline.evaluate, "evaluate_spaces", scoring)
    yield scoring
    scoring.gate.set()  # never leave a worker waiting for the next tests


def _compute(at: AppTest) -> Job:
    at.number_input(key="evaluate.sample").set_value(100)
    at.button(key="evaluate.compute").click().run()
    assert not at.exception, at.exception
    job = jobs().get(at.session_state[FOLLOWED])
    assert job is not None
    return job


def _progress_texts(at: AppTest) -> list[str]:
    return [str(p.proto.text) for p in at.get("progress")]


def test_two_sessions_share_one_scorecard_job(held: HeldFits) -> None:
    first = run_page(PAGE, timeout=WAIT_S).run()
    second = run_page(PAGE, timeout=WAIT_S).run()
    job = _compute(first)
    assert job.running and job.kind == "evaluate"
    assert "No scorecard yet" in "\n".join(str(i.value) for i in first.info)  # the page went on meanwhile
    assert any("Scoring the spaces of seeded" in t for t in _progress_texts(first))  # followed on the page
    assert _compute(second) is job  # the same data, the same job
    # Everyone sees it in the job list, with who started it.
    assert any("Scoring the spaces of seeded" in t and f"started by {job.owner}" in t
               for t in _progress_texts(second))
    held.gate.set()
    assert job.wait(WAIT_S) and job.state == DONE, job.error
    assert (job.done, job.total) == (1, 1)  # progress counted spaces (the seeded project has one)
    for session in (first, second):
        session.run()  # what the follower's poll does once the job has ended
        assert not session.exception, session.exception
        assert list(session.dataframe[0].value.index) == ["pixels"]
        assert FOLLOWED not in session.session_state
    assert held.calls == 1  # one computation for both sessions
