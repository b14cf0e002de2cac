"""Search use cases on planted data, on both store adapters: ranking, filters, examples, arithmetic, text, image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import search
from core.errors import BadInputError, NotFoundError, UnsupportedOperationError
from core.filters import Filter, parse_filter
from core.ids import point_id
from core.store.base import VectorStore
from core.types import Item, SpaceInfo

P = "proj"
SPACE = SpaceInfo(name="own", dim=16, modality="vector")
N = 240


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _items(n: int) -> list[tuple[str, Item]]:
    """(dataset, item) pairs with every payload kind filters touch: split, label (some missing), meta, confidence."""
    out = []
    for i in range(n):
        dataset = "train" if i % 3 else "prod"
        out.append((dataset, Item(
            key=f"k{i:04d}",
            uri=f"/data/{i}.png",
            label=None if dataset == "prod" or i % 7 == 0 else ("cat" if i % 2 else "dog"),
            prediction="cat" if i % 5 else "dog",
            confidence=(i % 10) / 10,
            split="production" if dataset == "prod" else ("val" if i % 4 == 0 else "train"),
            meta={"camera": "a" if i % 2 else "b", "night": i % 4 == 1},
        )))
    return out


def _plant(store: VectorStore, vectors: np.ndarray, space: SpaceInfo = SPACE) -> list[str]:
    store.ensure_space(P, space)
    pairs = _items(len(vectors))
    ids = [point_id(P, ds, it.key) for ds, it in pairs]
    store.upsert(P, space.name, ids, vectors, [it.payload(ds) for ds, it in pairs])
    return ids


@pytest.fixture
def planted(store: VectorStore) -> tuple[VectorStore, list[str], np.ndarray]:
    vectors = _unit(np.random.default_rng(0).normal(size=(N, SPACE.dim)))
    return store, _plant(store, vectors), vectors


def _numpy_top(vectors: np.ndarray, ids: list[str], query: np.ndarray, mask: np.ndarray, k: int) -> list[str]:
    scores = vectors @ _unit(query)
    order = [i for i in np.argsort(-scores, kind="stable") if mask[i]]
    return [ids[i] for i in order[:k]]


def test_ranking_equals_exact_cosine_ranking(planted) -> None:
    store, ids, vectors = planted
    query = np.random.default_rng(1).normal(size=SPACE.dim)
    expected = _numpy_top(vectors, ids, query, np.ones(N, bool), 20)
    for exact in (True, False):
        hits = search.by_vector(store, P, "own", query, limit=20, exact=exact)
        assert [h.id for h in hits] == expected
        np.testing.assert_allclose([h.score for h in hits], np.sort(vectors @ _unit(query))[::-1][:20], atol=1e-4)
    # Hits carry every display field.
    assert set(search.DISPLAY_FIELDS) <= set(hits[0].payload)
    cmp = search.compare_exact(search.by_vector, store, P, "own", query, limit=20)
    assert cmp.k == 20 and cmp.recall == pytest.approx(1.0)


# Each case: clauses as the CLI / UI writes them, and the same predicate in Python on the items.
FILTER_CASES = {
    "dataset": (["dataset=prod"], lambda ds, it: ds == "prod"),
    "split": (["split=production"], lambda ds, it: it.split == "production"),
    "split in": (["split in val,production"], lambda ds, it: it.split in ("val", "production")),
    "unlabeled only": (["label is missing"], lambda ds, it: it.label is None),
    "labeled, not cat": (["label is present", "label!=cat"], lambda ds, it: it.label == "dog"),
    "metadata": (["meta.camera=a"], lambda ds, it: it.meta["camera"] == "a"),
    "metadata bool": (["meta.night=true"], lambda ds, it: it.meta["night"] is True),
    "range": (["confidence>=0.3", "confidence<=0.6"], lambda ds, it: 0.3 <= it.confidence <= 0.6),
    "combined": (["dataset=train", "label is missing", "meta.camera=b"],
                 lambda ds, it: ds == "train" and it.label is None and it.meta["camera"] == "b"),
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_filters_never_leak_and_apply_before_the_limit(planted, case: str) -> None:
    store, ids, vectors = planted
    clauses, predicate = FILTER_CASES[case]
    mask = np.array([predicate(ds, it) for ds, it in _items(N)])
    assert 0 < mask.sum() < N, "the case must select a proper subset"
    query = np.random.default_rng(2).normal(size=SPACE.dim)
    hits = search.by_vector(store, P, "own", query, flt=parse_filter(clauses), limit=15, exact=True)
    # Exactly the numpy top among matching points: nothing leaks in, and the filter ran inside
    # the query (a post-filter would return fewer than the limit).
    assert [h.id for h in hits] == _numpy_top(vectors, ids, query, mask, 15)
    by_id = dict(zip(ids, _items(N), strict=True))
    assert all(predicate(*by_id[h.id]) for h in hits)


def test_examples_search_excludes_examples_and_respects_filter(planted) -> None:
    store, ids, _ = planted
    flt = Filter.where(dataset="train")
    hits = search.by_examples(store, P, "own", [ids[1], ids[2]], flt=flt, limit=30)
    assert len(hits) == 30
    assert not {ids[1], ids[2]} & {h.id for h in hits}
    assert all(h.payload["dataset"] == "train" for h in hits)
    with pytest.raises(NotFoundError, match="not in space"):
        search.by_examples(store, P, "own", [point_id(P, "train", "nope")])
    with pytest.raises(BadInputError):
        search.by_examples(store, P, "own", [], [ids[1]])


def _cluster(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    return _unit(centre + spread * rng.normal(size=(n, centre.size)))


def test_negative_example_pushes_nearby_results_down(store: VectorStore) -> None:
    rng = np.random.default_rng(3)
    e = np.eye(SPACE.dim, dtype=np.float32)
    positive = e[0]
    # Cosines to the positive: group A ~0.96, group B ~0.89, the negative 0.88. The negative is
    # closer to group A (~0.98) than the positive is, and far from group B (~0.78).
    near_a = _cluster(rng, e[0] + 0.3 * e[1], 10, 0.01)
    near_b = _cluster(rng, e[0] + 0.5 * e[2], 10, 0.01)
    far = _cluster(rng, -e[0] + e[3], 40, 0.3)
    negative = _unit(e[0] + 0.55 * e[1])
    vectors = np.vstack([positive, negative, near_a, near_b, far])
    ids = _plant(store, vectors)
    pos_id, neg_id, group_a, group_b = ids[0], ids[1], set(ids[2:12]), set(ids[12:22])

    before = [h.id for h in search.by_examples(store, P, "own", [pos_id], limit=20, exact=True)]
    assert set(before[:10]) == group_a and set(before[10:20]) == group_b
    after = [h.id for h in search.by_examples(store, P, "own", [pos_id], [neg_id], limit=60, exact=True)]
    assert set(after[:10]) == group_b, "the negative example pushes group A below group B"
    assert min(after.index(i) for i in group_a if i in after) > max(after.index(i) for i in group_b)
    assert neg_id not in after and pos_id not in after


def test_arithmetic_lands_near_the_planted_answer(store: VectorStore) -> None:
    rng = np.random.default_rng(4)
    a, b, c = _unit(rng.normal(size=(3, SPACE.dim)))
    d = _unit(a - b + c + 0.05 * rng.normal(size=SPACE.dim))
    distractors = _unit(rng.normal(size=(150, SPACE.dim)))
    ids = _plant(store, np.vstack([a, b, c, d, distractors]))
    hits = search.by_arithmetic(store, P, "own", [(1, ids[0]), (-1, ids[1]), (1, ids[2])], limit=5)
    assert hits[0].id == ids[3]
    assert not set(ids[:3]) & {h.id for h in hits}, "the terms are excluded"
    # Raw vectors are terms too; terms that cancel out are refused.
    vec, seeds = search.arithmetic_vector(store, P, "own", [(1, a), (-1, b), (1, c)])
    np.testing.assert_allclose(vec, _unit(a - b + c), atol=1e-5)
    assert seeds == []
    with pytest.raises(BadInputError, match="cancel"):
        search.by_arithmetic(store, P, "own", [(1, ids[0]), (-1, ids[0])])
    with pytest.raises(ValueError, match="signs"):
        search.by_arithmetic(store, P, "own", [(2, ids[0])])
    with pytest.raises(UnsupportedOperationError):
        search.by_arithmetic(store, P, "own", [(1, ids[0]), (1, "a dog")])


# -- text and image through a tiny CLIP -----------------------------------------------------------
def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 255, size=(32, 32, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture
def clip_store(store: VectorStore, tiny_clip_dir: Path):  # noqa: F811
    from core.embedders import load_embedder

    embedder = load_embedder(str(tiny_clip_dir), "image", device="cpu")
    info = store.ensure_space(P, embedder.space_info())
    images = _images(40)
    vectors = embedder.embed_images(images)
    ids = _plant(store, vectors, info)
    store.ensure_space(P, SPACE)  # a space without a text side, next to the CLIP one
    store.upsert(P, "own", ids[:5], _unit(np.random.default_rng(6).normal(size=(5, 16))),
                 [Item(key=f"k{i}").payload("train") for i in range(5)])
    return store, embedder, info, ids, vectors, images


def _reference_text_features(model_dir: Path, text: str) -> np.ndarray:
    """The model's own text features for the string, straight from transformers, normalised."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        out = model.get_text_features(**processor(text=[text], return_tensors="pt", padding=True))
    feats = out if isinstance(out, torch.Tensor) else out.pooler_output
    return _unit(feats[0].numpy())


def test_text_query_uses_the_models_own_text_features(clip_store, tiny_clip_dir: Path) -> None:  # noqa: F811
    from core.embedders import clear_cache

    store, embedder, info, ids, vectors, _ = clip_store
    text = "a photo of a cat"
    expected = _reference_text_features(tiny_clip_dir, text)
    got = search.text_query_vector(store, P, info.name, text, embedder=embedder)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Default embedder: the space's own model, reloaded from the space descriptor (and cached).
    clear_cache()
    np.testing.assert_allclose(search.text_query_vector(store, P, info.name, text), expected, atol=1e-5)
    hits = search.by_text(store, P, info.name, text, limit=10, exact=True)
    assert [h.id for h in hits] == _numpy_top(vectors, ids, expected, np.ones(len(ids), bool), 10)
    unlabeled = search.by_text(store, P, info.name, text, flt=parse_filter(["label is missing"]), limit=40)
    assert unlabeled and all(h.payload["label"] is None for h in unlabeled)


def test_text_search_without_a_text_side_names_the_spaces_that_have_one(clip_store) -> None:
    store, _, info, *_ = clip_store
    assert search.text_side_spaces(store, P) == [info.name]
    with pytest.raises(UnsupportedOperationError, match="'own'") as err:
        search.by_text(store, P, "own", "a dog")
    assert info.name in str(err.value)
    with pytest.raises(BadInputError):
        search.by_text(store, P, info.name, "   ")


def test_image_query_finds_the_same_image_first(clip_store) -> None:
    store, embedder, info, ids, _, images = clip_store
    hits = search.by_image(store, P, info.name, images[7], embedder=embedder, limit=3)
    assert hits[0].id == ids[7] and hits[0].score == pytest.approx(1.0, abs=1e-3)
    buf = io.BytesIO()
    images[9].save(buf, format="PNG")
    hits = search.by_image(store, P, info.name, buf.getvalue(), limit=3)
    assert hits[0].id == ids[9]
    with pytest.raises(BadInputError, match="not a readable image"):
        search.by_image(store, P, info.name, b"not an image", embedder=embedder)
    with pytest.raises(BadInputError, match="over the limit of 100"):
        search.by_image(store, P, info.name, buf.getvalue(), embedder=embedder, max_pixels=100)
    with pytest.raises(UnsupportedOperationError):
        search.by_image(store, P, "own", images[0])


def test_limit_must_be_positive(planted) -> None:
    store, *_ = planted
    with pytest.raises(ValueError):
        search.by_vector(store, P, "own", np.ones(16), limit=0)


# -- readable scores: cosines, the nearest positive, "no close match" -------------------------------
def _with_copy(store: VectorStore, of: int = 0) -> tuple[list[str], np.ndarray]:
    """The planted random vectors with point 1 an exact copy of point `of`; -> (ids, vectors)."""
    vectors = _unit(np.random.default_rng(7).normal(size=(N, SPACE.dim)))
    vectors[1] = vectors[of]
    return _plant(store, vectors), vectors


@pytest.mark.parametrize("exact", [True, False])
def test_one_example_scores_are_cosines_and_a_copy_scores_one(store: VectorStore, exact: bool) -> None:
    ids, vectors = _with_copy(store)
    hits = search.by_examples(store, P, "own", [ids[0]], limit=10, exact=exact)
    assert ids[0] not in {h.id for h in hits}
    assert hits[0].id == ids[1] and hits[0].score == pytest.approx(1.0, abs=1e-5)
    expected = np.sort(np.delete(vectors @ vectors[0], 0))[::-1][:10]
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-5)
    assert all(isinstance(h, search.ExampleHit) and h.nearest_positive == h.score for h in hits)
    assert search.best_cosine(hits) == pytest.approx(1.0, abs=1e-5)


def test_several_examples_carry_the_cosine_to_the_nearest_positive(store: VectorStore) -> None:
    ids, vectors = _with_copy(store, of=5)
    positive, negative = [ids[0], ids[5]], [ids[9]]
    hits = search.by_examples(store, P, "own", positive, negative, limit=40, exact=True)
    assert hits[0].id == ids[1], "the copy of a positive example ranks first"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[0].nearest_positive == pytest.approx(1.0, abs=1e-5)
    assert hits[0].nearest_positive_id == ids[5]
    by_id = {pid: n for n, pid in enumerate(ids)}
    raw = {h.id: h.score for h in store.recommend(P, "own", positive, negative, limit=40, exact=True)}
    assert list(raw) == [h.id for h in hits], "Qdrant's order is kept"
    for hit in hits:
        vec = vectors[by_id[hit.id]]
        to_pos = [float(vec @ vectors[by_id[p]]) for p in positive]
        to_neg = float(vec @ vectors[9])
        assert hit.nearest_positive == pytest.approx(max(to_pos), abs=1e-5)
        assert hit.nearest_positive_id == positive[int(np.argmax(to_pos))]
        assert hit.nearest_negative == pytest.approx(to_neg, abs=1e-5)
        assert hit.score == pytest.approx(max(to_pos) if max(to_pos) > to_neg else -to_neg, abs=1e-5)
        # The cosine scale is Qdrant's own score unsquashed (checks its formula on both adapters).
        assert search.decode_recommend_score(raw[hit.id]) == pytest.approx(hit.score, abs=1e-3)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_only_the_top_hits_are_read_back(store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.search import scores

    ids, vectors = _with_copy(store)
    monkeypatch.setattr(scores, "MAX_SCORED", 5)
    read: list[int] = []
    original = store.vectors

    def counting(project, space, ids=None, flt=None, **kw):  # noqa: ANN001, ANN202
        read.append(len(ids or []))
        return original(project, space, ids=ids, flt=flt, **kw)

    monkeypatch.setattr(store, "vectors", counting)
    hits = search.by_examples(store, P, "own", [ids[0], ids[2]], limit=12, exact=True)
    assert max(read) <= 5, read
    assert all(np.isfinite(h.nearest_positive) for h in hits[:5])
    assert all(np.isnan(h.nearest_positive) for h in hits[5:])
    # Past the bound the score is Qdrant's, decoded: still the cosine to the nearest positive.
    by_id = {pid: n for n, pid in enumerate(ids)}
    for hit in hits[5:]:
        expected = max(float(vectors[by_id[hit.id]] @ vectors[p]) for p in (0, 2))
        assert hit.score == pytest.approx(expected, abs=1e-3)


def _clustered(store: VectorStore, k: int = 6, per: int = 40) -> tuple[list[str], np.ndarray, np.ndarray]:
    """k tight clusters (nearest-neighbour cosines ~0.99) -> (ids, vectors, centres)."""
    rng = np.random.default_rng(8)
    centres = _unit(rng.normal(size=(k, SPACE.dim)))
    vectors = _unit(np.repeat(centres, per, axis=0) + 0.03 * rng.normal(size=(k * per, SPACE.dim)))
    return _plant(store, vectors), vectors, centres


def test_no_close_match_for_a_far_query_only(store: VectorStore) -> None:
    ids, _, centres = _clustered(store)
    calibration = search.calibrate(store, P, "own")
    assert calibration.usable and calibration.quantile(0.05) > 0.9
    # Far: a direction away from every cluster. Near: a point close to a cluster centre.
    basis, _ = np.linalg.qr(centres.T)  # (dim, k): the span of the centres
    axis = np.eye(SPACE.dim)[0]
    far = _unit(axis - basis @ (basis.T @ axis))  # orthogonal to every centre
    far_hits = search.by_vector(store, P, "own", far, limit=5, exact=True)
    near_hits = search.by_vector(store, P, "own", _unit(centres[2] + 0.01), limit=5, exact=True)
    assert calibration.no_close_match(search.best_cosine(far_hits))
    assert calibration.share_closer(far_hits[0].score) >= 0.95
    assert not calibration.no_close_match(search.best_cosine(near_hits))
    # An example search: its best hit is a nearest neighbour in the space, so it is close.
    assert not calibration.no_close_match(search.best_cosine(search.by_examples(store, P, "own", [ids[3]])))


def test_calibration_is_bounded_and_cached_per_revision(store: VectorStore, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ids, vectors, _ = _clustered(store)
    cache = tmp_path / "calibration"
    asked: list[int] = []
    original = store.neighbours

    def counting(project, space, ids, k, flt=None):  # noqa: ANN001, ANN202
        asked.append(len(ids))
        return original(project, space, ids, k, flt=flt)

    monkeypatch.setattr(store, "neighbours", counting)
    first = search.calibrate(store, P, "own", ids, sample=50, cache_dir=cache)
    assert asked == [50] and len(first.cosines) == 50
    again = search.calibrate(store, P, "own", ids, sample=50, cache_dir=cache)
    assert asked == [50], "same revision: read from the cache"
    np.testing.assert_allclose(again.cosines, first.cosines, atol=1e-6)
    store.upsert(P, "own", ids[:1], vectors[1:2], [Item(key="moved").payload("train")])
    search.calibrate(store, P, "own", ids, sample=50, cache_dir=cache)
    assert asked == [50, 50], "a write moves the revision: recalibrated"
    assert len(list(cache.glob("*/*.json"))) == 1, "the older revision's file is gone"


def test_a_tiny_space_gives_no_verdict(store: VectorStore) -> None:
    _plant(store, _unit(np.random.default_rng(9).normal(size=(12, SPACE.dim))))
    calibration = search.calibrate(store, P, "own")
    assert not calibration.usable
    assert not calibration.no_close_match(-1.0)
