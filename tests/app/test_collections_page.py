"""Collections through AppTest: save from Search, reopen after a restart, export, delete."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.actors import ADMIN
from tests.app.conftest import Seeded, run_page
from ui import state

PAGE = "pages/5_Collections.py"
SEARCH = "pages/3_Search.py"


class _Media:
    """The real media storage of AppTest runs, kept so a test can read what a download button
    serves (AppTest forgets its runtime after each run)."""

    def __init__(self) -> None:
        self.stores: list[MemoryMediaFileStorage] = []

    def data(self, at: AppTest, key: str) -> bytes:
        button = next(b for b in at.get("download_button") if b.proto.id.endswith(f"-{key}"))
        file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
        for store in reversed(self.stores):
            try:
                return bytes(store.get_file(file_id).content)
            except MediaFileStorageError:  # stored by another run: look further back
                continue
        raise KeyError(f"no media file {file_id} for {key}")


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Media]:
    recorder = _Media()

    class Recording(MemoryMediaFileStorage):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            recorder.stores.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", Recording)
    yield recorder


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "caption", "info", "error", "warning", "success")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _save(at: AppTest, name: str, overwrite: bool = False) -> AppTest:
    at.text_input(key="search.save.name").input(name)
    at.checkbox(key="search.save.overwrite").set_value(overwrite)
    at.form_submit_button(key="search.save.save").click().run()
    assert not at.exception, at.exception
    return at


def _restart() -> None:
    """What a dashboard restart forgets: every cached resource (the store is closed) and result."""
    st.cache_data.clear()
    st.cache_resource.clear()


def test_empty_store(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert "The store is empty" in _texts(at)


def test_project_without_collections(seeded_store: Seeded) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert "has no collections yet" in _texts(at)


def test_save_reopen_after_restart_export_and_delete(seeded_store: Seeded, media: _Media) -> None:
    example = seeded_store.ids["train"][0]
    at = run_page(SEARCH)
    at.session_state[state.SEARCH_POSITIVE] = [example]
    at.run()
    saved_ids = [b.key.rsplit(".", 1)[-1] for b in at.button
                 if b.key and b.key.startswith("search.res.more.")]
    assert saved_ids
    _save(at, "similar cats")
    assert "Saved 24 items as collection “similar cats”" in _texts(at)
    # The same name again is refused with a message, unless "Replace" is ticked.
    _save(at, "similar cats")
    assert any("already exists" in e.value for e in at.error)
    _save(at, "similar cats", overwrite=True)
    assert not at.error

    _restart()
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table.set_index("name").loc["similar cats"]
    assert row["size"] == len(saved_ids) and row["space"] == seeded_store.space
    assert row["made by"] == "1 example(s)"
    grid = [b.key.rsplit(".", 1)[-1] for b in at.button
            if b.key and b.key.startswith("coll.grid.open.")]
    assert grid == saved_ids  # the saved order

    frame = pd.read_csv(io.BytesIO(media.data(at, "coll.export.csv")))
    assert {"id", "uri", "label", "prediction", "score", "dataset"} <= set(frame.columns)
    assert frame["id"].tolist() == saved_ids
    assert frame["score"].is_monotonic_decreasing
    assert set(frame["dataset"]) <= set(seeded_store.ids)
    jsonl = pd.read_json(io.BytesIO(media.data(at, "coll.export.jsonl")), lines=True)
    assert jsonl["id"].tolist() == saved_ids

    at.button(key="coll.delete").click().run()
    assert "Delete the collection “similar cats”?" in _texts(at)
    at.button(key="coll.delete.confirm").click().run()
    assert not at.exception, at.exception
    assert "has no collections yet" in _texts(at)


def test_labeling_round_trip_downloads_preview_and_apply(seeded_store: Seeded, media: _Media) -> None:
    """Label Studio / COCO downloads of a collection, then its corrected Label Studio export
    uploaded back: a preview table, and Apply sets the labels (one history entry)."""
    from core import collections
    from core.curation.history import read_history
    from core.store import open_store

    ids = seeded_store.ids["train"][:6]
    store = open_store(seeded_store.settings)
    try:
        collections.save(store, seeded_store.project, "to label", ids, space=seeded_store.space, actor=ADMIN)
    finally:
        store.close()
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    tasks = json.loads(media.data(at, "coll.export.ls"))
    assert [t["data"]["embedscope_id"] for t in tasks] == ids
    assert [t["predictions"][0]["result"][0]["value"]["choices"][0] for t in tasks] == [
        seeded_store.labels[i] for i in ids]
    assert any('<Choices name="label" toName="image"' in c.value for c in at.code)
    doc = json.loads(media.data(at, "coll.export.coco"))
    assert [img["embedscope_id"] for img in doc["images"]] == ids and len(doc["annotations"]) == 6

    # The annotator changes task 0 to "bird" and confirms task 1 as it is.
    old = seeded_store.labels[ids[0]]
    new = next(c for c in ("bird", "dog") if c != old)
    for n, label in ((0, new), (1, seeded_store.labels[ids[1]])):
        region = dict(tasks[n]["predictions"][0]["result"][0], value={"choices": [label]})
        tasks[n]["annotations"] = [{"id": n + 1, "result": [region], "was_cancelled": False}]
    at.file_uploader(key="coll.import.file").set_value(
        ("export.json", json.dumps(tasks).encode(), "application/json")).run()
    assert not at.exception, at.exception
    # (shown as escaped Markdown: it names the uploaded file)
    assert "1 changed, 1 unchanged, 0 unknown, 4 without a label" in _texts(at).replace("\\", "")
    preview = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert preview["status"].tolist()[:2] == ["changed", "unchanged"]
    assert preview["label in the file"].tolist()[0] == new
    at.button(key="coll.import.apply").click().run()
    assert not at.exception, at.exception
    assert "Set 1 label(s) from export.json" in _texts(at).replace("\\", "")
    _restart()
    store = open_store(seeded_store.settings)
    try:
        entry = read_history(store, seeded_store.project)[0]
        assert entry.why == "import" and [(r.old, r.new) for r in entry.rows] == [(old, new)]
    finally:
        store.close()
