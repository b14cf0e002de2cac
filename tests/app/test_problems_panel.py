"""The Problems panel through AppTest on a seeded store with planted problems.

Planted into the seeded "pixels" project: a noise image (outlier), a "cat" image labeled "dog"
(mislabel), and an exact copy of a train image in the test set (duplicate leaking across splits).
Without them the seeded project is a clean small upload: no likely mislabels, and the panel says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.ids import point_id
from tests.app.conftest import SEED_PROJECT, SEED_SPACE, Seeded

SELECTION = "es.selection"


@dataclass
class Planted:
    seeded: Seeded
    outlier: str
    mislabel: str
    duplicate: str  # the copy in "test"; its original is seeded.ids["train"][0]


def _add(store, settings, dataset: str, name: str, image: Image.Image, label: str | None,
         prediction: str | None, split: str | None) -> str:
    folder = settings.demo_dir / SEED_PROJECT / dataset
    path = folder / name
    image.save(path)
    pid = point_id(SEED_PROJECT, dataset, name)
    vec = np.asarray(image.convert("L"), dtype=np.float32).ravel()
    store.upsert(SEED_PROJECT, SEED_SPACE, [pid], (vec / np.linalg.norm(vec))[None, :],
                 [{"dataset": dataset, "key": name, "uri": str(path), "text": None, "label": label,
                   "prediction": prediction, "confidence": 0.9, "split": split,
                   "meta": {"camera": "cam0"}, "kind": "item"}])
    return pid


@pytest.fixture
def planted(seeded_store: Seeded) -> Planted:
    from core.store import open_store

    settings = seeded_store.settings
    rng = np.random.default_rng(1)
    store = open_store(settings)
    try:
        noise = Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8), "L").convert("RGB")
        outlier = _add(store, settings, "train", "noise.png", noise, "cat", "cat", "train")
        # Class 0 ("cat") lights the left third of the image: this one is a cat labeled "dog".
        cat = np.zeros((16, 16), dtype=np.uint8)
        cat[:, :5] = 200
        cat = np.clip(cat + rng.normal(0, 20, cat.shape), 0, 255).astype(np.uint8)
        mislabel = _add(store, settings, "train", "flipped.png", Image.fromarray(cat, "L").convert(
            "RGB"), "dog", "cat", "train")
        original = seeded_store.ids["train"][0]
        copy = Image.open(seeded_store.uris[original]).copy()
        duplicate = _add(store, settings, "test", "copy_of_train_000.png", copy, "cat", "cat",
                         "test")
    finally:
        store.close()
    return Planted(seeded_store, outlier, mislabel, duplicate)


def _panel_script() -> None:
    import streamlit as st

    from ui import state
    from ui.page import setup_page
    from ui.widgets.problems import problems_panel, run_find_problems

    ctx = setup_page("Problems")
    # The seeded classes are near-copies of each other at the default 0.98: only exact copies.
    analysis = run_find_problems(ctx, params={"duplicate_threshold": 0.999})
    picked = problems_panel(analysis, key="p", top=12)
    if picked is not None:
        state.set_selection(picked)
    st.write(f"selected: {len(state.get_selection())}")


def _grid_ids(at: AppTest, prefix: str) -> list[str]:
    """Ids of the grid's "Open" buttons in display order."""
    return [b.key[len(prefix):] for b in at.button if b.key and b.key.startswith(prefix)]


def test_planted_problems_rank_first_and_select(planted: Planted) -> None:
    at = AppTest.from_function(_panel_script, default_timeout=120).run()
    assert not at.exception, at.exception
    outliers = _grid_ids(at, "p.outlier.grid.open.")
    mislabels = _grid_ids(at, "p.mislabel.grid.open.")
    assert planted.outlier in outliers[:3], outliers[:5]
    assert planted.mislabel in mislabels[:3], mislabels[:5]
    # Only items past the cut-offs are listed, under a headline with their count.
    assert len(mislabels) <= 3 and len(outliers) <= 4
    texts = [m.value for m in at.markdown]
    assert f"**{len(mislabels)} likely mislabel{'' if len(mislabels) == 1 else 's'}**" in " ".join(texts)
    assert any(t.startswith(f"**{len(outliers)} likely outlier") for t in texts), texts
    assert not any("No likely mislabels" in s.value for s in at.success)
    # The planted copy forms a duplicate group with its original, flagged as leakage.
    dup_keys = [b.key for b in at.button if b.key and b.key.startswith("p.dups.grid.")]
    assert any(k.endswith(planted.duplicate) for k in dup_keys), dup_keys
    assert any("leakage" in m.value for m in at.markdown)
    # Each list is exportable.
    downloads = at.get("download_button")
    assert len(downloads) >= 3
    # Clicking an outlier selects it (SELECTION is what the map highlights).
    at.button(key=f"p.outlier.grid.open.{planted.outlier}").click().run()
    assert not at.exception, at.exception
    assert at.session_state[SELECTION] == [planted.outlier]
    # "Select group" selects both the copy and its original.
    group_button = next(b for b in at.button if b.key and b.key.startswith("p.dups.sel."))
    group_button.click().run()
    assert {planted.duplicate, planted.seeded.ids["train"][0]} <= set(at.session_state[SELECTION])


def test_clean_upload_reports_no_likely_mislabels_and_why(seeded_store: Seeded) -> None:
    """The seeded upload is clean (labels follow the image pattern): the mislabels tab says so
    in words and lists nothing; the full ranking stays one toggle away."""
    at = AppTest.from_function(_panel_script, default_timeout=120).run()
    assert not at.exception, at.exception
    messages = [s.value for s in at.success]
    assert any(m.startswith("No likely mislabels: every labelled item agrees with its neighbours")
               for m in messages), messages
    assert not _grid_ids(at, "p.mislabel.grid.open.")
    assert not any("likely mislabel" in m.value and m.value.startswith("**") for m in at.markdown)
    assert any(c.value.startswith("Mislabel score: 1 − the probability") for c in at.caption)
    assert not _grid_ids(at, "p.mislabel.ranking.open.")
    at.toggle(key="p.mislabel.full").set_value(True).run()
    assert not at.exception, at.exception
    assert len(_grid_ids(at, "p.mislabel.ranking.open.")) == 12  # top=12 of the 36 labelled items


def _low_precision_script() -> None:
    import dataclasses

    from ui.page import setup_page
    from ui.widgets.problems import problems_panel, run_find_problems

    ctx = setup_page("Problems")
    analysis = run_find_problems(ctx, params={"duplicate_threshold": 0.999})
    # The same flagged list as a space that only partly separates the classes would report it.
    low = dataclasses.replace(analysis, summary={**analysis.summary, "mislabel_precision": 0.3})
    problems_panel(low, key="p", top=12)


def test_a_list_with_low_estimated_precision_says_what_that_means(planted: Planted) -> None:
    at = AppTest.from_function(_panel_script, default_timeout=120).run()
    assert not at.exception, at.exception
    assert not any("Fewer than half" in w.value for w in at.warning)  # the planted flip: a sure list
    at = AppTest.from_function(_low_precision_script, default_timeout=120).run()
    assert not at.exception, at.exception
    assert any("(estimated precision 30%)" in m.value for m in at.markdown)
    warnings = [w.value for w in at.warning if w.value.startswith("Fewer than half of these are likely wrong")]
    assert len(warnings) == 1 and "Review before relabelling" in warnings[0], [w.value for w in at.warning]
