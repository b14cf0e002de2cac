"""An open dashboard follows writes made elsewhere (the CLI) on the next rerun, without a restart,
and shows persisted results as out of date instead of recomputing them on a page view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from streamlit.testing.v1 import AppTest

from core.pipeline.analyse import DOC_KIND as ANALYSIS_KIND
from core.pipeline.compare import DOC_KIND as COMPARE_KIND
from tests.app.conftest import ROOT, SEED_LABELS, SEED_PROJECT, Seeded, run_page
from ui.widgets.out_of_date import OUT_OF_DATE

NEW_LABEL = "lynx"


def _relabel_from_the_cli(seeded: Seeded, dataset: str, key: str, label: str) -> None:
    """`embedscope ingest --labels-only` in another process, as a user would run it while the
    dashboard is open (the embedded store is handed over between the two processes)."""
    folder = seeded.settings.demo_dir / SEED_PROJECT / dataset
    manifest = folder / "relabel.csv"
    manifest.write_text(f"id,path,label\n{key},{key},{label}\n")
    done = subprocess.run(
        [sys.executable, "-m", "core", "ingest", "--manifest", str(manifest), "--labels-only",
         "--project", SEED_PROJECT, "--dataset", dataset],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "updated 1 of 1" in done.stdout


def _docs(seeded: Seeded, kind: str) -> dict[str, Any]:
    """The persisted documents of one kind, read by another store instance (like the CLI)."""
    from core.store import open_store

    store = open_store(seeded.settings)
    try:
        return {key: store.get_document(SEED_PROJECT, kind, key)
                for key in store.list_documents(SEED_PROJECT, kind)}
    finally:
        store.close()


def _map_labels(at: AppTest) -> set[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"] for t in spec["data"]}


def _warnings(at: AppTest) -> str:
    return "\n".join(str(w.value) for w in at.warning)


def test_a_label_changed_from_the_cli_shows_after_a_rerun(seeded_store: Seeded) -> None:
    at = run_page("pages/2_Explore.py", timeout=180)
    at.session_state["explore.method"] = "PCA"
    at.run()
    at.button(key="explore.find").click().run()
    assert not at.exception, at.exception
    assert set(SEED_LABELS) <= _map_labels(at) and NEW_LABEL not in _map_labels(at)
    assert OUT_OF_DATE not in _warnings(at)
    before = _docs(seeded_store, ANALYSIS_KIND)
    relabelled = seeded_store.ids["train"][0]

    _relabel_from_the_cli(seeded_store, "train", "train_000.png", NEW_LABEL)
    at.run()  # a rerun of the same session: no restart, no cache cleared by hand
    assert not at.exception, at.exception
    assert NEW_LABEL in _map_labels(at)
    # The problems found before are shown as they were, flagged, not recomputed on view.
    assert OUT_OF_DATE in _warnings(at)
    assert _docs(seeded_store, ANALYSIS_KIND) == before

    at.button(key="explore.recompute").click().run()
    assert not at.exception, at.exception
    assert OUT_OF_DATE not in _warnings(at)
    after = _docs(seeded_store, ANALYSIS_KIND)
    assert after.keys() == before.keys()
    key = next(iter(after))
    assert after[key]["fingerprint"] != before[key]["fingerprint"]  # the new label counts
    assert relabelled in after[key]["computed"]["index"]


def test_compare_shows_out_of_date_then_updates(seeded_store: Seeded) -> None:
    at = run_page("pages/4_Compare.py", timeout=180)
    at.session_state["compare.method"] = "PCA"
    at.run()
    assert not at.exception, at.exception
    assert OUT_OF_DATE not in _warnings(at)
    before = _docs(seeded_store, COMPARE_KIND)
    assert len(before) == 1

    _relabel_from_the_cli(seeded_store, "train", "train_001.png", NEW_LABEL)
    at.run()
    assert not at.exception, at.exception
    assert OUT_OF_DATE in _warnings(at)
    assert not at.status, "a page view must not recompute the comparison"
    assert _docs(seeded_store, COMPARE_KIND) == before

    at.button(key="compare.refresh").click().run()
    assert not at.exception, at.exception
    assert OUT_OF_DATE not in _warnings(at)
    (key, doc), = _docs(seeded_store, COMPARE_KIND).items()
    assert doc["fingerprint"] != before[key]["fingerprint"]
