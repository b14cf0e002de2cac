"""The Search page through AppTest: examples, filters, text and image queries, map hand-over."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import Settings
from tests.actors import ADMIN
from tests.app.conftest import SEED_LABELS, Seeded, run_page
from ui import state
from ui.text import md

PAGE = "pages/3_Search.py"
RESULTS = "search.res.more."


def _texts(at: AppTest) -> str:
    kinds = ("markdown", "subheader", "title", "caption", "info", "error", "warning", "success")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _result_ids(at: AppTest, prefix: str = RESULTS) -> list[str]:
    """Ids of the result cards in display order (from their "+ more like this" buttons)."""
    return [b.key[len(prefix):] for b in at.button if b.key and b.key.startswith(prefix)]


def _true_class(seeded: Seeded, point_id: str) -> str:
    """The planted class of any seeded point, labeled or not (file name index i -> class i % 3)."""
    index = int(Path(seeded.uris[point_id]).stem.rsplit("_", 1)[1])
    return SEED_LABELS[index % len(SEED_LABELS)]


def _search(**session: object) -> AppTest:
    at = run_page(PAGE)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_empty_store_explains_what_to_do(app_env: Settings) -> None:
    at = run_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Nothing to search yet" in _texts(at)


def test_examples_return_their_class_first(seeded_store: Seeded) -> None:
    cat = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat")
    at = _search(**{state.SEARCH_POSITIVE: [cat]})
    ids = _result_ids(at)
    assert len(ids) == 24 and cat not in ids  # the example itself is never a result
    n_cats = sum(_true_class(seeded_store, i) == "cat" for i in seeded_store.uris) - 1
    assert {_true_class(seeded_store, i) for i in ids[:n_cats]} == {"cat"}, ids[:n_cats]
    assert "more like 1 example" in _texts(at)


def test_more_and_less_buttons_update_the_examples(seeded_store: Seeded) -> None:
    at = _search()
    assert "Pick examples" in _texts(at) and not _result_ids(at)  # no query yet: a sample
    first = _result_ids(at, "search.sample.more.")[0]
    at.button(key=f"search.sample.more.{first}").click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.SEARCH_POSITIVE] == [first]
    ids = _result_ids(at)
    assert ids and first not in ids
    unlike = ids[-1]
    at.button(key=f"search.res.less.{unlike}").click().run()
    assert at.session_state[state.SEARCH_NEGATIVE] == [unlike]
    assert unlike not in _result_ids(at)
    # Removing the last positive example ends the example search.
    at.button(key=f"search.ex.pos.rm.{first}").click().run()
    assert at.session_state[state.SEARCH_POSITIVE] == []
    assert not _result_ids(at)


def test_explore_selection_becomes_the_examples(seeded_store: Seeded) -> None:
    dogs = [i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "dog"][:3]
    at = _search(**{state.SELECTION: dogs})
    at.button(key="search.ex.selection").click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.SEARCH_POSITIVE] == dogs
    ids = _result_ids(at)
    assert not set(ids) & set(dogs)
    assert {_true_class(seeded_store, i) for i in ids[:10]} == {"dog"}


def test_unlabeled_only_never_shows_labeled_items(seeded_store: Seeded) -> None:
    cat = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat")
    at = _search(**{state.SEARCH_POSITIVE: [cat]})
    at.sidebar.checkbox(key="search.flt.unlabeled").check().run()
    assert not at.exception, at.exception
    ids = _result_ids(at)
    assert len(ids) == len(seeded_store.ids["prod"])  # every unlabeled item, nothing else
    assert all(seeded_store.labels[i] is None for i in ids)
    assert _true_class(seeded_store, ids[0]) == "cat"
    # Exact search gives the same filtered answer.
    at.sidebar.toggle(key="search.exact").set_value(True).run()
    assert set(_result_ids(at)) == set(ids)


def test_text_search_without_text_side_names_the_reason(seeded_store: Seeded) -> None:
    at = _search()
    info = "\n".join(i.value for i in at.info)
    assert "Text search needs a space" in info and "the space pixels " in info
    assert "No space of project seeded has one" in info
    assert not [t for t in at.text_input if t.key == "search.text"]


def test_show_on_map_highlights_the_results_on_explore(seeded_store: Seeded) -> None:
    at = run_page("Home.py").run()
    at.switch_page(PAGE)
    at.session_state[state.SEARCH_POSITIVE] = [seeded_store.ids["train"][0]]
    at.session_state["explore.method"] = "PCA"  # keep the Explore run fast
    at.run()
    ids = _result_ids(at)
    assert ids
    at.button(key="search.show_map").click().run()
    assert not at.exception, at.exception
    assert at.session_state[state.HIGHLIGHT_IDS] == ids
    assert "Explore" in at.title[0].value


# -- a space with a text side: tiny CLIP ---------------------------------------------------------
def _picture(colour: tuple[int, int, int], stripe: int) -> Image.Image:
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[:, stripe * 8:(stripe + 1) * 8] = 255
    return Image.fromarray(pixels)


@pytest.fixture
def clip_store(app_env: Settings,
               tiny_clip_dir: Path) -> tuple[str, list[str], list[Path]]:  # noqa: F811
    """Project "clip": 12 generated pictures embedded with a tiny CLIP. -> (space, ids, paths)."""
    from core.embedders import load_embedder
    from core.ids import point_id
    from core.pipeline.ingest import ingest_items
    from core.store import open_store
    from core.types import Item

    folder = app_env.demo_dir / "clip"
    folder.mkdir(parents=True)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    paths, items = [], []
    for i in range(12):
        path = folder / f"pic_{i:02d}.png"
        _picture(colours[i % 3], i % 4).save(path)
        paths.append(path)
        items.append(Item(key=path.name, uri=str(path), label=("red", "green", "blue")[i % 3]))
    embedder = load_embedder(str(tiny_clip_dir), "image", device="cpu")
    store = open_store(app_env)
    try:
        report = ingest_items(store, "clip", "photos", items, embedder, settings=app_env, actor=ADMIN)
        assert report.stored == 12
    finally:
        store.close()
    return embedder.space_info().name, [point_id("clip", "photos", p.name) for p in paths], paths


def test_text_query_in_a_clip_space(clip_store: tuple[str, list[str], list[Path]],
                                    tiny_clip_dir: Path, app_env: Settings) -> None:  # noqa: F811
    from core import search
    from core.embedders import load_embedder
    from core.store import open_store

    space, _, _ = clip_store
    store = open_store(app_env)
    try:
        expected = [h.id for h in search.by_text(
            store, "clip", space, "a photo of a cat",
            embedder=load_embedder(str(tiny_clip_dir), "image", device="cpu"), limit=24)]
    finally:
        store.close()
    at = _search()
    assert not at.info or "Text search needs" not in "\n".join(i.value for i in at.info)
    at.text_input(key="search.text").input("a photo of a cat").run()
    assert not at.exception, at.exception
    assert _result_ids(at) == expected and len(expected) == 12
    assert "text “a photo of a cat”" in _texts(at)


def test_uploaded_image_finds_itself_first(clip_store: tuple[str, list[str], list[Path]]) -> None:
    _, ids, paths = clip_store
    at = _search()
    buffer = io.BytesIO()
    Image.open(paths[5]).save(buffer, "PNG")
    at.file_uploader(key="search.image").set_value(("query.png", buffer.getvalue(),
                                                    "image/png")).run()
    assert not at.exception, at.exception
    results = _result_ids(at)
    assert results[0] == ids[5]
    assert md("image query.png") in _texts(at)  # the file name is shown as text


# -- readable scores and "no close match" ----------------------------------------------------------
def _add_lone_point(seeded: Seeded) -> str:
    """One item whose vector is a single dim pixel, far from every seeded picture -> its id."""
    from core.ids import point_id
    from core.store import open_store
    from core.types import Item

    vector = np.zeros(16 * 16, dtype=np.float32)
    vector[-1] = 1.0
    store = open_store(seeded.settings)
    try:
        pid = point_id(seeded.project, "prod", "lone.png")
        store.upsert(seeded.project, seeded.space, [pid], vector[None, :], [Item(key="lone.png").payload("prod")])
    finally:
        store.close()
    return pid


def _expected_top(seeded: Seeded, positive: list[str]) -> list:
    from core import search
    from core.store import open_store

    store = open_store(seeded.settings)
    try:
        return search.by_examples(store, seeded.project, seeded.space, positive, limit=24)
    finally:
        store.close()


def test_one_example_shows_cosines_and_a_close_match(seeded_store: Seeded) -> None:
    cat = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat")
    expected = _expected_top(seeded_store, [cat])
    at = _search(**{state.SEARCH_POSITIVE: [cat]})
    texts = _texts(at)
    assert "Score: cosine similarity to the example, 1.00 = same direction (an identical copy)" in texts
    assert f"score: {md(f'{expected[0].score:.3f}')}" in texts  # the first card shows the cosine
    assert "Best hit" in texts and "No close match" not in texts
    assert not at.warning


def test_a_far_example_says_no_close_match_and_still_lists_hits(seeded_store: Seeded) -> None:
    lone = _add_lone_point(seeded_store)
    at = _search(**{state.SEARCH_POSITIVE: [lone]})
    warning = "\n".join(w.value for w in at.warning)
    assert "No close match: the best hit (" in warning and "% of items are to their nearest neighbour" in warning
    assert len(_result_ids(at)) == 24


def test_several_examples_show_the_nearest_positive(seeded_store: Seeded) -> None:
    cats = [i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "cat"][:2]
    dog = next(i for i in seeded_store.ids["train"] if seeded_store.labels[i] == "dog")
    at = _search(**{state.SEARCH_POSITIVE: cats, state.SEARCH_NEGATIVE: [dog]})
    texts = _texts(at)
    assert "cosine similarity to the nearest positive example" in texts
    assert "nearest positive: " in texts  # on every card
    table = at.dataframe[0].value
    assert {"score", "nearest positive", "nearest negative"} <= set(table.columns)
    assert table["nearest positive"].between(-1.0, 1.0 + 1e-5).all()
