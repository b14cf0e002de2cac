"""run_analysis / run_compare on a real store: planted problems found, results persisted and reused."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import BadInputError, NotFoundError
from core.ids import point_id
from core.pipeline.analyse import load_analysis, run_analysis
from core.pipeline.analysis_io import export_scores
from core.pipeline.compare import run_compare
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN

P, S = "proj", "emb"


def _seed(store: VectorStore) -> dict[str, list[str]]:
    """train (240: 4 labelled blobs, 8 flipped labels, 3 outliers), test (60, 4 copies of train
    items), production (70 unlabeled: 50 from the blobs + 20 from a novel blob)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 32)) * 2
    names = np.array(["ant", "bee", "cat", "dog", "eel"])

    def blob(n: int, which: list[int]) -> tuple[np.ndarray, np.ndarray]:
        t = np.array(which)[rng.integers(0, len(which), n)]
        return centres[t] + 0.5 * rng.standard_normal((n, 32)), t

    tx, tt = blob(240, [0, 1, 2, 3])
    tx[237:] = rng.standard_normal((3, 32)) * 2.5  # outliers
    labels = names[tt].astype(object)
    labels[:8] = names[(tt[:8] + 1) % 4]  # flipped
    preds = names[tt].astype(object)
    preds[tt == 3] = np.where(rng.random(int((tt == 3).sum())) < 0.6, "cat", "dog")  # dogs fail
    ex, et = blob(60, [0, 1, 2, 3])
    ex[:4] = tx[20:24] + 0.001 * rng.standard_normal((4, 32))  # leaked copies
    px, _ = blob(50, [0, 1, 2, 3])
    px = np.vstack([px, blob(20, [4])[0]])
    store.ensure_space(P, SpaceInfo(S, 32, "vector"))
    ids: dict[str, list[str]] = {}
    for ds, x, labs, prs in (("train", tx, labels, preds), ("test", ex, names[et], names[et]),
                             ("production", px, [None] * 70, [None] * 70)):
        items = [Item(key=f"{ds}-{i}", uri=f"/data/{ds}/{i}.png", label=labs[i],
                      prediction=prs[i], confidence=None if prs[i] is None else 0.8, split=ds)
                 for i in range(len(x))]
        ids[ds] = [point_id(P, ds, it.key) for it in items]
        unit = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        store.upsert(P, S, ids[ds], unit, [it.payload(ds) for it in items])
    return ids


def test_planted_problems_are_found(store: VectorStore) -> None:
    ids = _seed(store)
    result = run_analysis(store, P, S, ["train", "test"], actor=ADMIN)
    scores = result.scores
    assert len(scores) == 300 and result.datasets == ["test", "train"] and not result.reused
    for col in ("outlier", "mislabel", "suggested_label", "cluster", "is_error",
                "duplicate_group", "leakage", "label", "prediction", "dataset", "uri"):
        assert col in scores.columns
    flipped, outliers = ids["train"][:8], ids["train"][237:]
    # 12, not 8: the 4 leaked test copies carry labels drawn apart from their vectors (mislabels too).
    assert set(scores.nlargest(12, "mislabel").index) >= set(flipped[:6])
    assert set(scores.nlargest(3, "outlier").index) == set(outliers)
    leaked = set(ids["train"][20:24]) | set(ids["test"][:4])
    assert set(scores.index[scores["leakage"]]) == leaked
    leaks = result.duplicates[result.duplicates["leakage"]]
    assert len(leaks) == 4 and all(d == ["test", "train"] for d in leaks["datasets"])
    assert set(sum(leaks["ids"], [])) == leaked
    assert result.clusters["size"].sum() + result.summary["noise"] == 300
    top = result.error_clusters.iloc[0]
    assert top["top_confusion"].startswith("dog -> cat")
    # The cut-offs: the planted outliers and most flipped labels are flagged, few others.
    likely_out = set(scores.index[scores["likely_outlier"]])
    assert set(outliers) <= likely_out and len(likely_out) <= 6
    likely_mis = set(scores.index[scores["likely_mislabel"]])
    assert len(likely_mis & set(flipped)) >= 6 and len(likely_mis - set(flipped)) <= 3, len(likely_mis)
    assert (scores.loc[list(likely_mis), "suggested_label"] != scores.loc[list(likely_mis), "label"]).all()
    s = result.summary
    assert s["likely_outliers"] == len(likely_out) and s["likely_mislabels"] == len(likely_mis)
    assert s["mislabel_precision"] is None or 0 <= s["mislabel_precision"] <= 1
    rep = result.clusters["representatives"].iloc[0][0]
    assert rep in scores.index


def test_rerun_is_reused_until_labels_change(store: VectorStore,
                                             caplog: pytest.LogCaptureFixture) -> None:
    ids = _seed(store)
    caplog.set_level(logging.INFO, logger="core.pipeline.analyse")
    first = run_analysis(store, P, S, ["train"], actor=ADMIN)
    again = run_analysis(store, P, S, ["train"], actor=ADMIN)
    assert again.reused and "analysis reused" in caplog.text
    pd.testing.assert_frame_equal(first.scores, again.scores, check_exact=False, atol=1e-5)
    pd.testing.assert_frame_equal(first.clusters, again.clusters)
    latest = load_analysis(store, P, S, ["train"])
    assert latest is not None and latest.fingerprint == first.fingerprint
    # Relabel one flipped item correctly: the data changed, so the analysis is recomputed.
    fixed = str(first.scores.loc[ids["train"][0], "suggested_label"])
    store.set_payload(P, [ids["train"][0]], [{"label": fixed}])
    caplog.clear()
    changed = run_analysis(store, P, S, ["train"], actor=ADMIN)
    assert not changed.reused and "analysis computed" in caplog.text
    assert changed.fingerprint != first.fingerprint
    assert changed.scores.loc[ids["train"][0], "mislabel"] < 0.5 < first.scores.loc[
        ids["train"][0], "mislabel"]
    assert not run_analysis(store, P, S, ["train"], force=True, actor=ADMIN).reused
    assert not run_analysis(store, P, S, ["train"], params={"k": 8}, actor=ADMIN).reused


def test_compare_finds_the_novel_region(store: VectorStore) -> None:
    ids = _seed(store)
    result = run_compare(store, P, S, "train", "production", actor=ADMIN)
    novel = set(ids["production"][50:])
    assert set(result.novelty.index[:20]) == novel
    assert result.novelty["novelty"].is_monotonic_decreasing
    # 20 of 70 production items are separable: the best possible AUC is ~0.64.
    assert result.drift["domain_auc"] >= 0.55 and "0.5" in result.drift["domain_auc_meaning"]
    assert result.drift["knn_p_value"] < 0.05
    top = result.regions.iloc[0]  # largest deviation first: the novel blob (+ a train outlier)
    assert top["status"] in ("only in B", "more B") and top["n_b"] >= 18 and top["ratio_b"] > 3
    assert (result.novelty.loc[list(novel), "region"] == top["region"]).mean() >= 0.9
    assert (result.regions.iloc[1:]["status"] != "only in B").all()
    assert result.label_field is None and result.labels.empty
    again = run_compare(store, P, S, "train", "production", actor=ADMIN)
    assert again.reused
    pd.testing.assert_frame_equal(result.novelty, again.novelty)
    test = run_compare(store, P, S, "train", "test", actor=ADMIN)
    assert test.label_field == "label" and test.label_tv is not None and test.label_tv < 0.3
    assert test.novelty["duplicate_of_a"].sum() == 4
    assert test.drift["knn_p_value"] > 0.01
    assert test.regions["status"].eq("balanced").all()
    with pytest.raises(BadInputError):
        run_compare(store, P, S, "train", "train", actor=ADMIN)
    with pytest.raises(NotFoundError, match="nope"):
        run_compare(store, P, S, "train", "nope", actor=ADMIN)


def test_unlabelled_dataset_gets_outliers_and_clusters_only(store: VectorStore) -> None:
    ids = _seed(store)
    result = run_analysis(store, P, S, ["production"], actor=ADMIN)
    assert result.scores["mislabel"].isna().all() and result.scores["is_error"].isna().all()
    assert result.error_clusters.empty and result.summary["error_rate"] is None
    novel = result.scores.loc[ids["production"][50:], "cluster"]
    assert novel.nunique() == 1 and novel.iloc[0] != -1  # the novel blob is its own cluster
    assert result.scores["outlier"].notna().all() and len(result.clusters) >= 2


def test_export_and_bad_params(store: VectorStore, tmp_path: Path) -> None:
    _seed(store)
    result = run_analysis(store, P, S, ["train"], actor=ADMIN)
    out = export_scores(result.scores, "outlier", tmp_path / "o.jsonl")
    assert list(out.columns[:6]) == ["id", "uri", "label", "prediction", "score", "dataset"]
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 240 and rows[0]["score"] >= rows[-1]["score"]
    csv = pd.read_csv(export_scores(result.scores, "mislabel", None).pipe(
        lambda f: (f.to_csv(tmp_path / "m.csv", index=False), tmp_path / "m.csv")[1]))
    assert csv["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="allowed"):
        run_analysis(store, P, S, ["train"], params={"neighbours": 5}, actor=ADMIN)


def test_cli_analyse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.__main__ import main
    from core.store import EdgeStore

    path = str(tmp_path / "q")
    seeded = EdgeStore(path)
    _seed(seeded)
    seeded.close()
    argv = ["--store", path, "analyse", "--project", P, "--space", S, "--datasets", "train,test",
            "--out", str(tmp_path / "scores.csv"), "--top", "5", "--progress", "none"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Likely mislabels" in printed and "Error clusters" in printed
    table = pd.read_csv(tmp_path / "scores.csv")
    assert len(table) == 300 and {"id", "uri", "score", "outlier", "cluster"} <= set(table.columns)
    assert table["score"].is_monotonic_decreasing
    assert main(argv) == 0 and "reused" in capsys.readouterr().out
    assert main(["--store", path, "analyse", "--project", "missing", "--space", S]) == 1
    assert main(argv[:-6] + ["--out", str(tmp_path / "x.txt")]) == 1
    assert main(argv + ["--top", "-1"]) == 2


def test_store_neighbours_equal_the_exact_graph(store: VectorStore) -> None:
    """neighbours() (the server-side kNN of big spaces) returns the exact graph on small data,
    and an analysis built on it equals the in-process one."""
    from core.analysis.knn import knn_graph
    from core.filters import Filter, items_only
    from core.pipeline.analysis_io import load_selection

    _seed(store)
    sel = load_selection(store, P, S, ["train", "test"])
    ids, sims = store.neighbours(P, S, sel.ids, 5, flt=items_only(Filter.datasets(["train", "test"])))
    exact_idx, exact_sims = knn_graph(sel.vectors, 5, method="exact")
    assert ids.shape == (300, 5) and sims.dtype == np.float32
    assert not (ids == np.array(sel.ids, dtype=object)[:, None]).any()  # never itself
    np.testing.assert_allclose(sims, exact_sims, atol=1e-4)
    same = np.array(sel.ids, dtype=object)[exact_idx] == ids
    assert same.mean() > 0.99  # equal but for near-ties
    on_server = run_analysis(store, P, S, ["train", "test"], params={"knn_method": "server", "k": 5}, actor=ADMIN)
    in_process = run_analysis(store, P, S, ["train", "test"], params={"knn_method": "exact", "k": 5}, actor=ADMIN)
    pd.testing.assert_series_equal(on_server.scores["outlier"], in_process.scores["outlier"], atol=1e-4)
    assert (on_server.scores["duplicate_group"] >= 0).sum() == (in_process.scores["duplicate_group"] >= 0).sum()


def _clean_digits(store: VectorStore) -> list[str]:
    """A clean small labelled upload: 30 real sklearn digits (10 each of 0, 1, 6; correct labels,
    the model right with high confidence) through PCA to 16 components."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == d)[:10] for d in (0, 1, 6)])
    x = PCA(16, random_state=0).fit_transform(digits.data[rows])
    names = [f"digit{t}" for t in digits.target[rows]]
    store.ensure_space(P, SpaceInfo(S, 16, "vector"))
    items = [Item(key=f"d{i}", uri=f"/data/d{i}.png", label=names[i], prediction=names[i],
                  confidence=0.95, split="train") for i in range(len(rows))]
    ids = [point_id(P, "clean", it.key) for it in items]
    unit = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    store.upsert(P, S, ids, unit, [it.payload("clean") for it in items])
    return ids


def test_clean_small_upload_has_no_likely_mislabels(store: VectorStore) -> None:
    ids = _clean_digits(store)
    result = run_analysis(store, P, S, ["clean"], params={"k": 5}, actor=ADMIN)
    scores = result.scores
    assert len(scores) == 30 and scores["mislabel"].notna().all()
    assert result.summary["likely_mislabels"] == 0 and not scores["likely_mislabel"].any()
    assert result.summary["mislabel_precision"] is None
    assert result.summary["likely_outliers"] <= 1  # not 24 of 30, as a fixed top-24 list said
    assert scores["likely_outlier"].dtype == bool and scores["likely_mislabel"].dtype == bool
    # The new columns round-trip through the persisted document.
    again = load_analysis(store, P, S, ["clean"])
    assert again is not None
    pd.testing.assert_series_equal(again.scores["likely_outlier"], scores["likely_outlier"])
    pd.testing.assert_series_equal(again.scores["likely_mislabel"], scores["likely_mislabel"])
    assert again.summary["likely_mislabels"] == 0
    # Flip three labels: they are flagged, with a precision estimate.
    # Relabel three zeros: they are flagged.
    store.set_payload(P, ids[:3], [{"label": "digit1"}, {"label": "digit6"}, {"label": "digit1"}])
    flipped = run_analysis(store, P, S, ["clean"], params={"k": 5}, actor=ADMIN)
    assert len(set(flipped.scores.index[flipped.scores["likely_mislabel"]]) & set(ids[:3])) >= 2
    assert flipped.summary["likely_mislabels"] >= 2


def test_an_analysis_of_the_previous_format_is_recomputed(store: VectorStore) -> None:
    """A format-1 document (before likely_* existed) loads as "not computed" and is recomputed."""
    from core.pipeline.analyse import ANALYSIS_FORMAT, DOC_KIND
    from core.pipeline.analysis_io import doc_key
    from core.store.documents import FORMAT

    _clean_digits(store)
    run_analysis(store, P, S, ["clean"], params={"k": 5}, actor=ADMIN)
    key = doc_key(S, "clean")
    doc = store.get_document(P, DOC_KIND, key)
    assert doc is not None and doc[FORMAT] == ANALYSIS_FORMAT == 2
    for name in ("likely_outlier", "likely_mislabel"):
        del doc["computed"]["columns"][name]
        doc["computed"]["order"].remove(name)
        del doc["computed"]["dtypes"][name]
    store.put_document(P, DOC_KIND, key, {**doc, FORMAT: 1})
    assert load_analysis(store, P, S, ["clean"]) is None
    result = run_analysis(store, P, S, ["clean"], params={"k": 5}, actor=ADMIN)
    assert not result.reused and "likely_mislabel" in result.scores.columns
    assert store.get_document(P, DOC_KIND, key)[FORMAT] == 2
