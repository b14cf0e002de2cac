"""The "Error clusters" tab through AppTest: each error cluster with its description, lift and
p-value, and an empty state that says why there are none."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _tab_script() -> None:
    import numpy as np
    import pandas as pd
    import streamlit as st

    from core.analysis import clusters as cl
    from ui.widgets.problems import _error_clusters_tab

    case = st.session_state["case"]
    clusters = np.repeat(np.arange(10), 20)
    labels = np.array(["3"] * 200, dtype=object)
    preds = labels.copy()
    if case == "found":
        preds[:12] = "5"  # cluster 0: 12 of 20 wrong
    preds[np.arange(200) % 20 == 19] = "8"  # one error in every cluster
    if case == "none":
        preds[:] = None
    x = np.eye(200, 8, dtype=np.float32) + 0.01
    table = cl.cluster_table(x, clusters, labels, preds)
    split = np.where(np.arange(200) < 14, "val", "train").astype(object)
    errors = cl.error_clusters(table, clusters, labels, preds, {"split": split})
    is_error = pd.array([None if p is None else p != lab for lab, p in zip(labels, preds, strict=True)],
                        dtype="boolean")
    scores = pd.DataFrame({"cluster": clusters, "is_error": is_error, "label": labels, "prediction": preds,
                           "uri": None}, index=[f"id{i}" for i in range(200)])
    # 5 unlabeled members of cluster 0 (not in the error statistics, but selected with the cluster)
    unlabeled = pd.DataFrame({"cluster": 0, "is_error": pd.array([None] * 5, dtype="boolean"), "label": None,
                              "prediction": "5", "uri": None}, index=[f"u{i}" for i in range(5)])
    scores = pd.concat([scores, unlabeled])
    picked = _error_clusters_tab(errors, scores, "e")
    st.write(f"picked: {picked}")


def _plain(markdown: str) -> str:
    """The text a user reads: ui.text.md's escapes and word joiners removed."""
    return markdown.replace("\\", "").replace("\u2060", "")


def _run(case: str) -> AppTest:
    at = AppTest.from_function(_tab_script, default_timeout=60)
    at.session_state["case"] = case
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_error_cluster_shows_lift_p_value_description_and_its_errors() -> None:
    at = _run("found")
    head = [_plain(m.value) for m in at.markdown if m.value.startswith("**Cluster 0**")]
    # 13 of 20 wrong against 22 of 200 overall: lift 0.65 / 0.11
    # The counts say what "Select cluster" selects: 25 points, of which 20 labeled, 13 of those wrong.
    assert len(head) == 1 and "25 points, 20 labeled, 13 errors (65% of the labeled, lift 5.9× the average, " \
        "p = 3e-09)" in head[0], head
    assert "top confusion 3 -> 5 (12)" in head[0]
    captions = [_plain(c.value) for c in at.caption]
    assert any(c.startswith("mostly label 3 predicted as 5 (92% of its errors)") and "split=val 70% vs 7% overall"
               in c for c in captions), captions
    assert not any(m.value.startswith("**Cluster 1**") for m in at.markdown)  # 1 error: no excess
    at.button(key="e.sel.0").click().run()
    picked = " ".join(m.value for m in at.markdown)
    assert "picked: ['id0'" in picked and "'u4'" in picked


def test_empty_states_say_why() -> None:
    captions = [c.value for c in _run("none").caption]
    assert any(c.startswith("No error clusters: they need items with both a label and a model prediction")
               for c in captions), captions
    captions = [c.value for c in _run("even").caption]
    assert any(c.startswith("No cluster holds significantly more model errors than the 5.0% average")
               for c in captions), captions
