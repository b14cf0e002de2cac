"""The representation scorecard: figures on a constructed case, the use case on a real store, `embedscope evaluate`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from core.__main__ import main
from core.analysis.scorecard import best_space, score_space
from core.errors import NotFoundError
from core.ids import point_id
from core.linalg import l2_normalise
from core.pipeline import evaluate
from core.pipeline.evaluate import evaluate_spaces, sample_rows, stored_scorecard
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN

PROJECT = "digits"
N = 500  # digits kept: enough for 10 classes of ~50, fast on 2 cores


def _digits(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors (N, 64) of digits' pixels plus gaussian noise of `noise` x the pixel range, labels)."""
    x, y = load_digits(return_X_y=True)
    x, y = x[:N].astype(np.float32), y[:N]
    x = x + noise * 16.0 * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    return l2_normalise(x), y.astype(str).astype(object)


@pytest.fixture
def digits_store(store_factory: Callable[..., VectorStore], tmp_path: Path) -> Iterator[VectorStore]:
    """Project "digits", dataset "all": space "clean" (pixels), "noisy" (pixels + heavy noise),
    "unlabelled" (pixels; the same points but no label anywhere: a second dataset "bare")."""
    store = store_factory("edge", tmp_path / "store")
    clean, labels = _digits()
    noisy, _ = _digits(noise=1.5)
    items = [Item(key=f"d{i:04d}", label=str(labels[i])) for i in range(N)]
    ids = [point_id(PROJECT, "all", it.key) for it in items]
    for space, vectors in (("clean", clean), ("noisy", noisy)):
        store.ensure_space(PROJECT, SpaceInfo(space, 64, "vector"))
        store.upsert(PROJECT, space, ids, vectors, [it.payload("all") for it in items])
    bare = [Item(key=f"b{i:04d}") for i in range(N)]
    store.ensure_space(PROJECT, SpaceInfo("unlabelled", 64, "vector"))
    store.upsert(PROJECT, "unlabelled", [point_id(PROJECT, "bare", it.key) for it in bare], clean,
                 [it.payload("bare") for it in bare])
    yield store


# -- the figures ---------------------------------------------------------------------------------

def test_the_clean_space_scores_higher_on_every_label_figure_than_its_noisy_copy() -> None:
    clean_x, labels = _digits()
    noisy_x, _ = _digits(noise=1.5)
    clean, noisy = score_space(clean_x, labels), score_space(noisy_x, labels)
    for name in ("knn_accuracy", "probe_accuracy", "balanced_recall", "precision_at_k", "nmi"):
        assert getattr(clean, name) > getattr(noisy, name) + 0.05, name
    assert clean.knn_accuracy > 0.9 and clean.probe_accuracy > 0.85  # digits' pixels separate the classes
    assert set(clean.recall) == {str(d) for d in range(10)} and min(clean.recall.values()) > 0.6
    assert clean.items == clean.labelled == N and clean.classes == 10 and clean.clusters >= 2
    assert math.isnan(clean.trustworthiness)  # no map given
    table = pd.DataFrame([vars(noisy), vars(clean)], index=["noisy", "clean"])
    best, by = best_space(table)
    assert best == "clean" and "linear-probe accuracy" in by


def test_trustworthiness_separates_a_faithful_map_from_a_shuffled_one() -> None:
    x, _ = _digits()
    from sklearn.decomposition import PCA

    faithful = PCA(2, random_state=0).fit_transform(x)
    shuffled = faithful[np.random.default_rng(0).permutation(N)]
    from core.analysis.scorecard import map_trustworthiness

    assert map_trustworthiness(x, faithful) > map_trustworthiness(x, shuffled) + 0.2


def test_without_labels_the_label_columns_say_so_and_the_rest_is_computed() -> None:
    x, _ = _digits()
    score = score_space(x, np.array([None] * N, dtype=object))
    assert score.note == "no labels" and score.labelled == 0
    assert all(math.isnan(getattr(score, c)) for c in ("knn_accuracy", "probe_accuracy", "ari", "nmi"))
    assert score.clusters >= 1 and 0.0 <= score.noise <= 1.0
    one_class = score_space(x, np.array(["a"] * N, dtype=object))
    assert one_class.note == "one class only"


def test_the_sample_picks_the_same_ids_wherever_they_exist() -> None:
    ids = np.array([f"id{i}" for i in range(1000)])
    first = sample_rows(ids, np.ones(1000, bool), 100, seed=0)
    subset = np.arange(0, 1000, 2)  # another space holding every second point
    second = sample_rows(ids[subset], np.ones(subset.size, bool), 100, seed=0)
    assert len(first) == 100 and set(ids[first]) & set(ids[subset]) <= set(ids[subset][second])
    assert set(ids[sample_rows(ids, np.ones(1000, bool), 100, seed=1)]) != set(ids[first])


# -- the use case on a store ----------------------------------------------------------------------

def test_evaluate_ranks_the_clean_space_first_and_persists_each_row(digits_store: VectorStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    card = evaluate_spaces(digits_store, PROJECT, sample=300, actor=ADMIN)
    assert list(card.table.index) == ["clean", "noisy", "unlabelled"]
    assert card.best == "clean" and card.best_line().startswith("Best space: clean, by linear-probe")
    assert (card.table.loc[["clean", "noisy"], "evaluated"] == 300).all()  # a sample of the 500
    assert card.table.loc["clean", "probe_accuracy"] > card.table.loc["noisy", "probe_accuracy"]
    assert card.table.loc["unlabelled", "note"] == "no labels"
    assert math.isnan(card.table.loc["unlabelled", "knn_accuracy"]) and card.table.loc["unlabelled", "clusters"] >= 1
    assert list(card.recall.index) == ["clean", "noisy"] and list(card.recall.columns) == [str(d) for d in range(10)]
    # Reused while nothing changed: no space is scored again.
    calls: list[str] = []
    real = evaluate.score_one
    monkeypatch.setattr(evaluate, "score_one", lambda *a, **kw: calls.append(a[2].name) or real(*a, **kw))
    again = evaluate_spaces(digits_store, PROJECT, sample=300, actor=ADMIN)
    assert calls == [] and again.table.equals(card.table)
    assert stored_scorecard(digits_store, PROJECT, sample=300).missing == []
    assert stored_scorecard(digits_store, PROJECT, sample=200).missing == ["clean", "noisy", "unlabelled"]


def test_a_persisted_map_adds_its_trustworthiness_and_a_write_rescores(digits_store: VectorStore) -> None:
    from core.pipeline.maps import get_map

    evaluate_spaces(digits_store, PROJECT, ["clean"], sample=300, actor=ADMIN)
    get_map(digits_store, PROJECT, "clean", None, method="pca", actor=ADMIN)
    assert stored_scorecard(digits_store, PROJECT, ["clean"], sample=300).missing == ["clean"]
    card = evaluate_spaces(digits_store, PROJECT, ["clean"], sample=300, actor=ADMIN)
    assert card.table.loc["clean", "map"] == "pca" and 0.5 < card.table.loc["clean", "trustworthiness"] <= 1.0
    digits_store.set_payload(PROJECT, [point_id(PROJECT, "all", "d0000")], [{"label": "7"}])
    assert stored_scorecard(digits_store, PROJECT, ["clean"], sample=300).missing == ["clean"]


def test_unknown_project_space_or_dataset_is_named(digits_store: VectorStore) -> None:
    with pytest.raises(NotFoundError, match="Project 'nope' not found"):
        evaluate_spaces(digits_store, "nope", actor=ADMIN)
    with pytest.raises(NotFoundError, match="'shiny' not found in project 'digits'; it has: clean"):
        evaluate_spaces(digits_store, PROJECT, ["shiny"], actor=ADMIN)
    with pytest.raises(NotFoundError, match="'gone'"):
        evaluate_spaces(digits_store, PROJECT, datasets=["gone"], actor=ADMIN)


def test_deleting_a_space_deletes_its_scorecard_rows(digits_store: VectorStore) -> None:
    from core.pipeline.delete import delete_space

    evaluate_spaces(digits_store, PROJECT, ["clean", "noisy"], sample=300, actor=ADMIN)
    delete_space(digits_store, PROJECT, "noisy", actor=ADMIN)
    keys = digits_store.list_documents(PROJECT, evaluate.DOC_KIND)
    assert [k.split(":")[0] for k in keys] == ["clean"]


# -- the command line on the demo -----------------------------------------------------------------

@pytest.fixture
def demo_loaded() -> list[str]:
    """The demo (no pretrained space) in the store the CLI opens; returns its spaces."""
    from core.config import load_settings
    from core.demo import DEMO_PROJECT, load_demo
    from core.store import open_store

    settings = load_settings()
    store = open_store(settings)
    try:
        load_demo(store, settings, with_pretrained=False)
        return [s.name for s in store.list_spaces(DEMO_PROJECT)]
    finally:
        store.close()


def test_cli_prints_a_row_per_demo_space_and_the_best(demo_loaded: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--project", "demo", "--sample", "800", "--progress", "none"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in demo_loaded]
    assert sorted(set(rows)) == sorted(demo_loaded) == ["demo-mlp", "pixels"]
    assert "at most 800 per space" in out and "knn_acc" in out and "Per-class recall" in out
    best = [line for line in out.splitlines() if line.startswith("Best space: ")]
    assert len(best) == 1 and best[0].split()[2].rstrip(",") in demo_loaded
    assert main(["evaluate", "--project", "demo", "--sample", "800", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["space"] for s in doc["spaces"]] == demo_loaded and doc["best"] in demo_loaded
    assert all(0.5 < s["probe_accuracy"] <= 1 and set(s["recall"]) >= {"0", "9"} for s in doc["spaces"])
    assert main(["evaluate", "--project", "demo", "--space", "pixels", "--sample", "800", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("space,model,dim") and "recall:9" in lines[0] and len(lines) == 2

    # Clear errors (the same demo store: loading it is the slow part).
    for argv, code, message in (
        (["--project", "nope"], 1, "error: Project 'nope' not found"),
        (["--project", "demo", "--space", "shiny"], 1, "error: Space(s) 'shiny' not found in project 'demo'"),
        (["--project", "demo", "--sample", "5"], 2, "--sample must be between"),
    ):
        assert main(["evaluate", *argv, "--progress", "none"]) == code, argv
        assert message in capsys.readouterr().err, argv
