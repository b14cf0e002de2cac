"""ui.downloads: a file a download button makes on click outlives other sessions' runs until its
session's next full run (Streamlit's own media manager, its real sweep)."""

from __future__ import annotations

import pytest
from streamlit.runtime import media_file_manager as mfm
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MediaFileStorageError, MemoryMediaFileStorage

from ui.downloads import keep_generated_downloads


def _generated(manager: MediaFileManager, session: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A click on a deferred CSV button of `session`: the generated file's id."""
    monkeypatch.setattr(mfm, "_get_session_id", lambda: session)
    placeholder = manager.add_deferred(lambda: b"id,label\n1,cat\n", "text/csv", "1.2.3", file_name="sel.csv")
    url = manager.execute_deferred(placeholder)
    return url.rsplit("/", 1)[1].split(".", 1)[0]


def _sweeps(manager: MediaFileManager, n: int = 2) -> None:
    for _ in range(n):  # what the end of any session's script run does
        manager.remove_orphaned_files()


def test_a_generated_download_survives_other_sessions_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_generated_downloads()
    keep_generated_downloads()  # once per process
    storage = MemoryMediaFileStorage("/media")
    manager = MediaFileManager(storage)
    file_id = _generated(manager, "alice", monkeypatch)
    _sweeps(manager)
    assert storage.get_file(file_id).content == b"id,label\n1,cat\n"  # still there for the browser
    manager.clear_session_refs("alice")  # alice's next full run: her old files may go
    _sweeps(manager)
    with pytest.raises(MediaFileStorageError):
        storage.get_file(file_id)


def test_without_the_patch_the_sweep_deletes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the patch is for (Streamlit's own behaviour): this fails once Streamlit keeps the file
    itself, and then ui.downloads can go."""
    keep_generated_downloads()
    original = MediaFileManager.execute_deferred.__wrapped__  # type: ignore[attr-defined]
    monkeypatch.setattr(MediaFileManager, "execute_deferred", original)
    storage = MemoryMediaFileStorage("/media")
    manager = MediaFileManager(storage)
    file_id = _generated(manager, "bob", monkeypatch)
    _sweeps(manager)
    with pytest.raises(MediaFileStorageError):
        storage.get_file(file_id)
