"""Background jobs on the dashboard: two sessions asking for the same map share one fit; the job list; cancel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import core.pipeline.maps
from core.auth import Actor, Role
from core.config import Settings
from core.jobs import CANCELLED, DONE, Job, jobs
from tests.app.conftest import Seeded, run_page
from tests.app.test_ingest_page import _fill, _images, roots  # noqa: F401  (roots: a fixture)

PAGE = "pages/2_Explore.py"
FOLLOWED = "_jobs.followed.explore.fit"  # ui.jobs_view's session key for Explore's fit job
WAIT_S = 300


class HeldFits:
    """A core function (get_map, run_ingest), counting the calls made by job workers and holding them at
    a gate, so the test decides when the work may run (page threads pass straight through)."""

    def __init__(self, real: Any) -> None:
        self.real, self.gate, self.calls = real, threading.Event(), 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("embedscope-job"):
            self.calls += 1
            assert self.gate.wait(WAIT_S)
        return self.real(*args, **kwargs)


@pytest.fixture
def held(seeded_store: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldFits]:
    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "0")  # the page does not wait: it follows the job
    fits = HeldFits(core.pipeline.maps.get_map)
    monkeypatch.setattr(core.pipeline.maps, "get_map", fits)
    yield fits
    fits.gate.set()  # never leave a worker waiting for the next tests


def _title(at: AppTest) -> str:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return str(json.loads(charts[0].proto.spec)["layout"]["title"]["text"])


def _job(at: AppTest) -> Job:
    job = jobs().get(at.session_state[FOLLOWED])
    assert job is not None
    return job


def _progress_texts(at: AppTest) -> list[str]:
    return [str(p.proto.text) for p in at.get("progress")]


def test_two_sessions_asking_for_the_same_map_share_one_fit(held: HeldFits) -> None:
    first = run_page(PAGE, timeout=WAIT_S).run()
    assert not first.exception, first.exception
    assert "Quick layout" in _title(first)  # drawn at once, the fit runs in the background
    second = run_page(PAGE, timeout=WAIT_S).run()
    assert not second.exception, second.exception
    job = _job(first)
    assert _job(second) is job and job.running and job.kind == "map"
    # Everyone sees it in the job list, with who started it.
    assert any("Fitting the UMAP map" in t and f"started by {job.owner}" in t for t in _progress_texts(second))
    held.gate.set()
    assert job.wait(WAIT_S) and job.state == DONE, job.error
    for session in (first, second):
        session.run()
        assert not session.exception, session.exception
        assert _title(session).startswith("UMAP")
    assert held.calls == 1  # one computation for both sessions
    # Done a moment ago: a third session draws the saved map, nothing is fitted again.
    third = run_page(PAGE, timeout=WAIT_S).run()
    assert _title(third).startswith("UMAP") and held.calls == 1


def test_the_owner_cancels_the_fit_and_a_viewer_gets_no_cancel_button(
        held: HeldFits, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = run_page(PAGE, timeout=WAIT_S).run()
    job = _job(owner)
    cancel_key = f"explore.fit.follow.cancel.{job.id}"
    assert any(b.key == cancel_key for b in owner.button)
    # Another user with the viewer role sees the job listed, without a Cancel button.
    import ui.actor

    monkeypatch.setattr(ui.actor, "current_actor", lambda: Actor("someone-else", Role.VIEWER))
    viewer = run_page(PAGE, timeout=WAIT_S).run()
    assert not viewer.exception, viewer.exception
    assert any("Fitting the UMAP map" in t and f"started by {job.owner}" in t for t in _progress_texts(viewer))
    assert not any(b.key and b.key.endswith(f"cancel.{job.id}") for b in viewer.button)
    assert job.running and not job.cancel_requested
    monkeypatch.undo()  # the owner again (and the seeded settings)
    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "0")
    owner.button(key=cancel_key).click().run()
    assert job.cancel_requested
    held.gate.set()
    assert job.wait(WAIT_S) and job.state == CANCELLED and job.error is None
    owner.run()
    assert not owner.exception, owner.exception
    # Not started again on its own: the quick layout stays, with a button to fit it after all.
    assert "Quick layout" in _title(owner) and any(b.key == "explore.fit.again" for b in owner.button)
    assert held.calls == 1


def test_an_ingest_runs_in_the_background_and_its_summary_follows(
        roots: Settings, tmp_path: Path, tiny_vit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import core.pipeline.ingest_job
    from core.pipeline import indexing
    from ui.state import LAST_INGEST

    monkeypatch.setenv("EMBEDSCOPE_JOB_WAIT_S", "0")
    monkeypatch.setattr(indexing, "INDEX_THRESHOLD", 4)  # the CLI's rule (20k), on 6 images
    held = HeldFits(core.pipeline.ingest_job.run_ingest)  # the ingest waits for the test's go
    monkeypatch.setattr(core.pipeline.ingest_job, "run_ingest", held)
    _images(tmp_path / "datasets" / "pets")
    at = run_page("pages/1_Ingest.py", timeout=WAIT_S).run()
    at.radio(key="ing.source").set_value("folder").run()
    at.text_input(key="ing.folder").set_value("pets")
    _fill(at, "pets-bg", "train", tiny_vit_dir).run()  # a project of its own: indexing keeps builds per process
    try:
        at.button(key="ing.run").click().run()
        assert not at.exception, at.exception
        ingesting = jobs().get(at.session_state["_jobs.followed.ingest.run"])
        assert ingesting is not None and ingesting.running and ingesting.kind == "ingest"
        assert LAST_INGEST not in at.session_state  # the page did not wait for it
        assert any("Ingesting pets" in t for t in _progress_texts(at))
    finally:
        held.gate.set()
    assert ingesting.wait(WAIT_S) and ingesting.state == DONE, ingesting.error
    at.run()  # what the follower's poll does once the job has ended
    assert not at.exception, at.exception
    summary = at.session_state[LAST_INGEST]
    assert (summary["dataset"], summary["stored"], summary["status"]) == ("train", 6, "ok")
    assert held.calls == 1
    # The search index builds as a job of its own, listed for everyone, that nobody can stop half-way.
    index = next(j for j in jobs().recent("pets-bg") if j.kind == "index" and j.submitted >= ingesting.submitted)
    assert not index.cancellable and index.wait(WAIT_S) and index.state == DONE and index.result is True
