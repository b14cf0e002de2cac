"""The home page's "Load detection demo": the pixels space at once, the pretrained space in the background."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.config import Settings
from tests.app.conftest import run_page
from tests.app.test_home import _texts
from ui.text import md


def test_load_detection_demo_button_loads_the_detection_demo(app_env: Settings, monkeypatch: pytest.MonkeyPatch,
                                                             tiny_vit_dir: Path) -> None:
    import core.demo_detection
    import core.demo_detection_job
    from core.embedders import load_embedder

    gate = threading.Event()

    def held_model(settings: Settings):  # the background job's model: waits for the test
        gate.wait(120)
        return load_embedder(str(tiny_vit_dir), "image", device="cpu")

    monkeypatch.setattr(core.demo_detection, "N_SCENES", 6)  # a few scenes keep the test fast
    monkeypatch.setenv("EMBEDSCOPE_DEMO_PRETRAINED", "1")
    monkeypatch.setattr(core.demo_detection_job, "pretrained_available", lambda: True)
    monkeypatch.setattr(core.demo_detection_job, "pretrained_embedder", held_model)
    at = run_page("Home.py", timeout=240).run()
    try:
        assert at.button(key="load_detection_demo").label == "Load detection demo"
        at.button(key="load_detection_demo").click().run()
        assert not at.exception, at.exception
        assert any(md("demo-detection") in s.value for s in at.subheader), _texts(at)
        assert not [b for b in at.button if b.key == "load_detection_demo"]
        datasets = at.table[0].value
        assert list(datasets.columns) == ["pixels"] and (datasets.to_numpy() == 6).all()  # the 6 scenes
        progress = [p for p in at.get("progress") if p.text.startswith("Computing the detection demo's")]
        assert len(progress) == 1 and progress[0].text.startswith(
            "Computing the detection demo's EfficientNet-Lite0 space (images and their boxes) in the "
            "background: 0 / 6 images")
        # ... and every user's job list (sidebar, Home's background jobs) shows it, started by the system
        assert any("Load detection demo" in p.text and "started by embedscope" in p.text for p in at.get("progress"))
        # the classification demo is still offered
        assert [b for b in at.button if b.key == "load_demo_more"]
    finally:
        gate.set()
    jobs = [job for store, job in core.demo_detection_job._JOBS.items() if str(app_env.data_dir) in store]
    assert len(jobs) == 1 and jobs[0].finished.wait(120) and jobs[0].error is None
    at.run()
    assert not at.exception, at.exception
    assert "The detection demo's EfficientNet-Lite0 space is ready" in _texts(at)
    assert len(at.table[0].value.columns) == 2  # the new space's counts on the home page
