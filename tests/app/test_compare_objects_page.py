"""The Compare page's images | objects switch through AppTest: on two datasets with detection objects, the
objects comparison finds the kind of object only production has and shows its region."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.app.conftest import run_page
from tests.core.test_compare_objects import seed
from ui.compare_pick import POINTS_KEY

PAGE = "pages/4_Compare.py"


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "caption", "info", "error", "warning")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind)) + "\n" + "\n".join(
        str(e.label) for e in at.expander)


def test_compare_switches_to_objects(app_env: Settings) -> None:
    from core.store import open_store

    store = open_store(app_env)
    try:
        seed(store)
    finally:
        store.close()
    at = run_page(PAGE, timeout=300)
    at.session_state["compare.method"] = "PCA"
    at.run()
    assert not at.exception, at.exception
    switch = at.segmented_control(key=POINTS_KEY)
    assert switch.value == "images" and "prod items unlike anything in train" in _texts(at)
    switch.set_value("objects").run()
    assert not at.exception, at.exception
    texts = _texts(at)
    assert "prod objects unlike anything in train" in texts
    assert "only in prod" in texts  # a region of the production-only kind of object
    # the images comparison stays what it was (kept apart)
    at.segmented_control(key=POINTS_KEY).set_value("images").run()
    assert not at.exception and "prod items unlike anything in train" in _texts(at)
