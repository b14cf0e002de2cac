"""Collections through AppTest: save from Search, reopen after a restart, export, delete."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
import pytest
import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core.config import Settings
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
