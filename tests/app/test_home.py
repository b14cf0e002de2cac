"""The home page through AppTest: empty store, "Load demo", a seeded store, an unreachable Qdrant."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.config import Settings
from tests.app.conftest import SEED_DATASETS, SEED_LABELS, Seeded, run_page
from ui.text import md


def _texts(at) -> str:
    parts = [e.value for kind in ("markdown", "subheader", "title", "caption", "info", "error",
                                  "warning", "success") for e in getattr(at, kind)]
    parts += [e.value for e in at.sidebar.info] + [e.value for e in at.sidebar.caption]
    return "\n".join(str(p) for p in parts)


def test_empty_store_offers_load_demo(app_env: Settings) -> None:
    at = run_page("Home.py").run()
    assert not at.exception
    assert at.button(key="load_demo").label == "Load demo"
    assert "The store is empty" in _texts(at)
    assert "ingest" in _texts(at).lower()


def test_load_demo_button_loads_the_demo(app_env: Settings, monkeypatch: pytest.MonkeyPatch,
                                        tiny_vit_dir: Path) -> None:
    """Load demo returns with the cheap spaces; the pretrained space (a tiny image model here,
    held back until the test lets it go) shows live progress on the home page, then appears."""
    import threading

    import core.demo
    import core.demo_job
    from core.embedders import load_embedder

    gate = threading.Event()

    def held_model(settings: Settings):  # the background job's model: waits for the test
        gate.wait(120)
        return load_embedder(str(tiny_vit_dir), "image", device="cpu")

    monkeypatch.setenv("EMBEDSCOPE_DEMO_PRETRAINED", "1")
    monkeypatch.setattr(core.demo_job, "pretrained_available", lambda: True)
    monkeypatch.setattr(core.demo, "pretrained_embedder", held_model)
    at = run_page("Home.py", timeout=240).run()
    try:
        at.button(key="load_demo").click().run()
        assert not at.exception, at.exception
        assert any("demo" in s.value for s in at.subheader), _texts(at)
        assert not [b for b in at.button if b.key == "load_demo"]
        datasets = at.table[0].value
        assert list(datasets.columns) == [md("demo-mlp"), md("pixels")] and (datasets.to_numpy() > 0).all()
        assert at.sidebar.selectbox(key="_w.project").value == "demo"
        # the background space: its progress line, and the way to the map that is ready already
        assert "appears in the sidebar when it is done" in _texts(at)
        progress = [p for p in at.get("progress") if p.text.startswith("Computing the EfficientNet-Lite0")]
        assert len(progress) == 1 and progress[0].value == 0
        assert progress[0].text.startswith("Computing the EfficientNet-Lite0 space in the background: 0 / 1,797 images")
        # ... and every user's job list (sidebar, Home's background jobs) shows it, started by the system
        assert any("Load demo" in p.text and "started by embedscope" in p.text for p in at.get("progress"))
        assert [link for link in at.get("page_link") if "map on Explore" in link.proto.label]
    finally:
        gate.set()
    jobs = [job for store, job in core.demo_job._JOBS.items() if str(app_env.data_dir) in store]
    assert len(jobs) == 1 and jobs[0].finished.wait(120) and jobs[0].error is None
    at.run()
    assert not at.exception, at.exception
    assert "The EfficientNet-Lite0 space is ready" in _texts(at)
    assert len(at.table[0].value.columns) == 3  # the new space's counts on the home page


def test_seeded_store_shows_datasets_spaces_and_labels(seeded_store: Seeded) -> None:
    at = run_page("Home.py").run()
    assert not at.exception
    assert any(seeded_store.project in s.value for s in at.subheader)
    datasets, spaces, labels = (at.table[i].value for i in range(3))
    assert {name: int(datasets.loc[name, "pixels"]) for name in datasets.index} == {
        name: n for name, (n, _, _) in SEED_DATASETS.items()}
    assert spaces.loc[0, "space"] == "pixels" and spaces.loc[0, "dim"] == 16 * 16
    # st.table renders Markdown: its text cells are escaped (ui.text.md), "(unlabeled)" too.
    assert {md(v) for v in (*SEED_LABELS, "(unlabeled)")} == set(labels.index)
    assert labels.loc[md("(unlabeled)"), "total"] == SEED_DATASETS["prod"][0]
    # The sidebar shares the choice: project, space, datasets with counts.
    assert at.sidebar.selectbox(key="_w.project").value == seeded_store.project
    assert at.sidebar.selectbox(key="_w.space").value == "pixels"
    assert sorted(at.sidebar.multiselect(key="_w.datasets").value) == sorted(SEED_DATASETS)


def test_sidebar_choice_is_shared_with_other_pages(seeded_store: Seeded) -> None:
    home = run_page("Home.py").run()
    home.sidebar.multiselect(key="_w.datasets").set_value(["test"]).run()
    assert not home.exception
    ingest = run_page("pages/1_Ingest.py")
    ingest.session_state["es.datasets"] = home.session_state["es.datasets"]
    ingest.run()
    assert ingest.sidebar.multiselect(key="_w.datasets").value == ["test"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once the socket is closed


@pytest.mark.parametrize("page", ["Home.py", "pages/1_Ingest.py"])
def test_unreachable_qdrant_is_a_message_not_a_traceback(app_env: Settings, page: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_QDRANT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("EMBEDSCOPE_QDRANT_TIMEOUT_S", "2")
    at = run_page(page).run()
    assert not at.exception
    # Messages are shown as text: the Markdown source holds the escaped host.
    assert len(at.error) == 1 and md("127.0.0.1") in at.error[0].value
    assert "Traceback" not in at.error[0].value
    # Retry tries again (Qdrant starting late) and still fails politely.
    at.button(key="_retry_store").click().run()
    assert not at.exception and len(at.error) == 1


def test_password_in_the_qdrant_url_is_never_shown(app_env: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("EMBEDSCOPE_QDRANT_URL", f"http://user:s3cret-pw@127.0.0.1:{port}")
    monkeypatch.setenv("EMBEDSCOPE_QDRANT_TIMEOUT_S", "2")
    at = run_page("Home.py").run()
    assert not at.exception and len(at.error) == 1
    shown = [e.value for e in (*at.error, *at.warning, *at.caption, *at.markdown, *at.sidebar.caption)]
    assert md(f"127.0.0.1:{port}") in at.error[0].value  # the server is still named
    assert not [s for s in shown if "s3cret" in s or "user:" in s]


def test_store_held_by_another_process_is_a_message_with_retry(
        app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os

    import core.store
    from core.store.edge import EdgeStore
    from core.store.lease import LOCK_FILE

    # The real embedded store, with a short wait for the lease so the test stays fast.
    monkeypatch.setattr(core.store, "open_store",
                        lambda s: EdgeStore(s.embedded_path, lock_timeout_s=0.5))
    root = Path(app_env.embedded_path)
    root.mkdir(parents=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # "a CLI ingest in the middle of an upsert"
    try:
        at = run_page("Home.py").run()
        assert not at.exception
        assert len(at.warning) == 1 and md(str(root), limit=None) in at.warning[0].value
        assert not at.error
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    at.button(key="_retry_store").click().run()  # the holder is done: retry gets in
    assert not at.exception and not at.warning
    assert at.button(key="load_demo").label == "Load demo"
