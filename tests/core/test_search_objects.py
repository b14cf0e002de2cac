"""Search over detection objects: a search ranks one kind of point (images or objects), object filters, text-to-object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core import search
from core.__main__ import main
from core.config import Settings
from core.ids import object_id
from core.linalg import l2_normalise
from core.store.base import VectorStore
from core.types import ITEM_KIND, OBJECT_KIND
from tests.object_scenes import Scenes, seed_scenes

P, SPACE = "scenes", "colours"


@pytest.fixture
def scenes(store: VectorStore, settings: Settings) -> Iterator[tuple[VectorStore, Scenes, dict[str, np.ndarray]]]:
    """The object scenes (tests/object_scenes.py) copied into the adapter under test; their vectors by id."""
    from core.store import open_store

    made = seed_scenes(settings, 8)
    source = open_store(settings)
    try:
        ids, vectors = source.vectors(P, SPACE)
        payloads = source.payloads(P, SPACE, flt=search.kind_filter(ITEM_KIND)).to_dict("index")
        payloads |= source.payloads(P, SPACE, flt=search.kind_filter(OBJECT_KIND)).to_dict("index")
        store.ensure_space(P, source.get_space(P, SPACE))
    finally:
        source.close()
    rows = [{k: v for k, v in payloads[i].items() if not k.startswith("meta.")} for i in ids]
    store.upsert(P, SPACE, list(ids), vectors, rows)
    yield store, made, dict(zip(ids, vectors, strict=True))


def _numpy_top(by_id: dict[str, np.ndarray], among: list[str], query: np.ndarray, k: int) -> list[float]:
    """The k best cosines of the query among these ids (scores, not ids: near-copies tie)."""
    sims = np.stack([by_id[i] for i in among]) @ query
    return sorted(sims.tolist(), reverse=True)[:k]


def test_examples_over_objects_rank_objects_only(scenes) -> None:
    store, made, by_id = scenes
    example = made.objects[0]
    hits = search.by_examples(store, P, SPACE, [example], kind=OBJECT_KIND, limit=10, exact=True)
    assert len(hits) == 10 and all(h.payload["kind"] == OBJECT_KIND for h in hits)
    others = [i for i in made.objects if i != example]
    assert [h.score for h in hits] == pytest.approx(_numpy_top(by_id, others, by_id[example], 10), abs=1e-5)
    # The default kind ranks images only, even from an object example (find the scenes like this crop).
    images = search.by_examples(store, P, SPACE, [example], limit=50)
    assert {h.id for h in images} == set(made.images)
    # Unlike-those: several examples go through Qdrant's recommend query, still objects only.
    negative = [i for i in made.objects if made.status[i] == "spurious"][:1]
    both = search.by_examples(store, P, SPACE, made.objects[:2], negative, kind=OBJECT_KIND, limit=40)
    assert both and all(h.payload["kind"] == OBJECT_KIND for h in both)
    assert not {h.id for h in both} & {*made.objects[:2], *negative}
    with pytest.raises(ValueError, match="kind"):
        search.by_vector(store, P, SPACE, by_id[example], kind="box")


def test_object_filters_keep_the_chosen_statuses_classes_and_scores(scenes) -> None:
    store, made, by_id = scenes
    query = by_id[made.images[0]]

    def found(choice: search.ObjectChoice) -> set[str]:
        lists = [search.by_vector(store, P, SPACE, query, flt=f, kind=OBJECT_KIND, limit=100)
                 for f in search.object_filters(choice)]
        return {h.id for h in search.merged(lists, 100)}

    wanted = {"missed", "spurious"}
    assert found(search.ObjectChoice(statuses=tuple(wanted))) == {i for i in made.objects
                                                                  if made.status[i] in wanted}
    # A class over both sources: label boxes by their label, predictions by their predicted class.
    assert len(search.object_filters(search.ObjectChoice(classes=("car",)))) == 2
    assert found(search.ObjectChoice(classes=("car",))) == {i for i in made.objects if made.cls[i] == "car"}
    assert found(search.ObjectChoice(classes=("bike",), sources=("prediction",))) == {
        i for i in made.objects if made.cls[i] == "bike" and made.source[i] == "prediction"}
    # A score range keeps predictions scored in it (label boxes have no score).
    mid = found(search.ObjectChoice(score=(0.5, 0.95)))
    assert mid and all(made.source[i] == "prediction" for i in mid)
    assert len(mid) == sum(1 for i in made.objects if made.source[i] == "prediction"
                           and made.status[i] in ("tp", "misclassified"))
    merged = search.merged([[h] for h in search.by_vector(store, P, SPACE, query, kind=OBJECT_KIND, limit=5)], 3)
    assert [h.score for h in merged] == sorted((h.score for h in merged), reverse=True) and len(merged) == 3


def test_text_to_object_search_in_a_clip_space(store: VectorStore, settings: Settings, tiny_clip_dir: Path) -> None:
    from PIL import Image

    from core.embedders import load_embedder

    made = seed_scenes(settings, 4)  # its PNG scenes; the objects are re-embedded with CLIP below
    embedder = load_embedder(str(tiny_clip_dir), "image", device="cpu")
    info = store.ensure_space(P, embedder.space_info())
    crops, ids, payloads = [], [], []
    for oid in made.objects:
        image = Image.open(settings.demo_dir / P / "street" / f"scene_{made.images.index(made.parent[oid]):02d}.png")
        crops.append(image.convert("RGB").crop(tuple(int(v) for v in made.box[oid])))
        ids.append(oid)
        payloads.append({"dataset": "street", "key": oid, "kind": OBJECT_KIND, "parent": made.parent[oid],
                         "box": made.box[oid], "source": made.source[oid], "match": made.status[oid]})
    scenes = [Image.open(settings.demo_dir / P / "street" / f"scene_{n:02d}.png").convert("RGB") for n in range(4)]
    vectors = embedder.embed_images(crops + scenes)
    store.upsert(P, info.name, ids + made.images, vectors,
                 payloads + [{"dataset": "street", "key": f"s{n}", "kind": ITEM_KIND} for n in range(4)])
    text = "a red car"
    hits = search.by_text(store, P, info.name, text, embedder=embedder, kind=OBJECT_KIND, limit=8, exact=True)
    assert len(hits) == 8 and all(h.payload["kind"] == OBJECT_KIND for h in hits)
    query = search.text_query_vector(store, P, info.name, text, embedder=embedder)
    unit = l2_normalise(np.asarray(vectors[: len(ids)], dtype=np.float32))
    assert [h.score for h in hits] == pytest.approx(_numpy_top(dict(zip(ids, unit, strict=True)), ids, query, 8),
                                                    abs=1e-5)
    images = search.by_text(store, P, info.name, text, embedder=embedder, limit=8)
    assert {h.id for h in images} == set(made.images)


def test_cli_search_over_objects(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    made = seed_scenes(settings, 6)
    example = object_id(P, "street", "scene_00.png", "label", 0)
    assert example in made.objects
    out = tmp_path / "hits.jsonl"
    code = main(["search", "--project", P, "--points", "objects", "--like", example, "--match", "missed,spurious",
                 "--limit", "50", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    import json

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["id"] for r in rows} == {i for i in made.objects if made.status[i] in ("missed", "spurious")}
    assert all(len(r["box"]) == 4 and r["source"] in ("label", "prediction") for r in rows)
    code = main(["search", "--project", P, "--like", "street:scene_00.png", "--match", "tp"])
    assert code == 2 and "--points objects" in capsys.readouterr().err
    code = main(["search", "--project", P, "--points", "objects", "--like", "street:scene_00.png#label/0",
                 "--class", "car", "--limit", "4"])
    printed = capsys.readouterr().out
    assert code == 0 and "match" in printed and "scene_00.png#label/0" not in printed
