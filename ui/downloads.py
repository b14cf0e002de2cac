"""Keep the file a download button makes on click until the browser has fetched it.

st.download_button with a callable (the Explore selection's CSV: built on click only) stores the
file it makes without any session referencing it, and Streamlit's orphan sweep, run at the end of
EVERY session's script run, marks it and then deletes it: with a few users at once the file was
gone before the browser asked for it, and no download came (the load test's export, issue 13).
keep_generated_downloads() makes the session that clicked reference the file, as a download
button with its data given up front does, until that session's next full run.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SUFFIX = "#generated"  # added to the button's coordinates: the key the generated file is kept under
_installed = False
_install_lock = threading.Lock()


def _keep(manager: Any, placeholder: str, url: str) -> None:
    """Reference the file behind url from the session (and button) that asked for it."""
    file_id = PurePosixPath(urlparse(url).path).name.split(".", 1)[0]
    with manager._lock:
        entry = manager._deferred_callables.get(placeholder)
        if entry is None or file_id not in manager._file_metadata:
            return  # revoked meanwhile, or a storage whose URLs do not name the file: nothing to keep
        manager._files_by_session_and_coord[entry["session_id"]][entry["coordinates"] + SUFFIX] = file_id


def keep_generated_downloads() -> None:
    """Patch Streamlit's MediaFileManager.execute_deferred once per process (idempotent). A Streamlit
    without the internals this relies on is left alone, with a warning."""
    global _installed
    from streamlit.runtime.media_file_manager import MediaFileManager

    with _install_lock:
        if _installed:
            return
        _installed = True
        original = getattr(MediaFileManager, "execute_deferred", None)
        if original is None:
            log.warning("this Streamlit has no deferred downloads: nothing to keep")
            return

        @functools.wraps(original)
        def execute_deferred(self: Any, file_id: str) -> str:
            url: str = original(self, file_id)
            try:
                _keep(self, file_id, url)
            except (AttributeError, KeyError, TypeError) as e:  # internals changed: the download still works
                log.warning("cannot keep a generated download for its session (%s: %s)", type(e).__name__, e)
            return url

        MediaFileManager.execute_deferred = execute_deferred  # type: ignore[method-assign]
