"""Search page logic: the active query (text / image / examples), its run in Qdrant, result cards.

The query lives in persistent session keys (not widget keys: Streamlit drops widget state on a
page switch), so a search survives a trip to Explore and back. Query vectors of texts and images
are kept per session, so reruns (a filter change, a click) do not embed again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import search
from core.display import shorten
from core.filters import Filter, items_only
from core.types import BOX, ITEM_KIND, URI, Hit, SpaceInfo
from ui import images, resources, state
from ui.crops import point_thumbnail
from ui.page import PageContext
from ui.text import md
from ui.widgets.detail import hits_frame
from ui.widgets.grid import caption

log = logging.getLogger(__name__)

Mode = Literal["text", "image", "examples"]
MODE = "es.search_mode"  # the active query kind, or absent
TEXT = "es.search_text"  # the submitted text
IMAGE = "es.search_image"  # (file name, bytes) of the uploaded query image
_SEEN = "search._seen_examples"  # the example lists of the last run (detects outside changes)
_SAMPLE_SEED = "search._sample_seed"  # seed of the random sample shown before any query
_VECTOR = "search._query_vector"  # (signature, (dim,) float32) of the last text / image query
TEXT_WIDGET = "search.text"
UPLOAD_WIDGET = "search.image"
RESULT_KEY = "search.res"
CARD_FIELDS: tuple[str, ...] = ("score", "label", "prediction", "dataset")
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
MAX_EXAMPLES = 50
EXPLORE_PAGE = "pages/2_Explore.py"


@dataclass(frozen=True)
class Query:
    """What to search for: a text, an uploaded image, or example ids (more like / unlike)."""

    mode: Mode
    text: str = ""
    image_name: str = ""
    image: bytes | None = None
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the results header, e.g. 'more like 2 examples, unlike 1'."""
        if self.mode == "text":
            return f"text “{self.text}”"
        if self.mode == "image":
            return f"image {self.image_name}"
        unlike = f", unlike {len(self.negative)}" if self.negative else ""
        return f"more like {len(self.positive)} example(s){unlike}"

    def to_doc(self, flt: Filter, exact: bool) -> dict[str, Any]:
        """JSON description kept with a saved collection (the image bytes are not kept)."""
        doc: dict[str, Any] = {"type": self.mode, "filter": asdict(flt), "exact": exact}
        if self.mode == "text":
            doc["text"] = self.text
        elif self.mode == "image":
            doc["image"] = self.image_name
        else:
            doc["positive"], doc["negative"] = list(self.positive), list(self.negative)
        return doc


# -- the active query ------------------------------------------------------------------------------
def _submit_text() -> None:
    text = str(st.session_state.get(TEXT_WIDGET) or "").strip()
    st.session_state[TEXT] = text
    st.session_state[MODE] = "text" if text else None


def _on_upload() -> None:
    upload = st.session_state.get(UPLOAD_WIDGET)
    if upload is None:
        st.session_state.pop(IMAGE, None)
        if st.session_state.get(MODE) == "image":
            st.session_state[MODE] = None
        return
    st.session_state[IMAGE] = (upload.name, upload.getvalue())
    st.session_state[MODE] = "image"


def current_query(space: SpaceInfo) -> Query | None:
    """The query to run now in `space`. Example lists changed elsewhere (Explore's selection,
    "find similar", a card's +/- button) make the examples the active query; a text or image
    query is dropped in a space that cannot embed it (the boxes say why)."""
    positive, negative = state.get_search_positive(), state.get_search_negative()
    examples = (tuple(positive), tuple(negative))
    if st.session_state.get(_SEEN) != examples:
        if positive:  # new examples: search with them (clearing them keeps a text query)
            st.session_state[MODE] = "examples"
        st.session_state[_SEEN] = examples
    mode = st.session_state.get(MODE)
    if mode == "text" and st.session_state.get(TEXT) and search.has_text_side(space):
        return Query("text", text=str(st.session_state[TEXT]))
    if mode == "image" and st.session_state.get(IMAGE) and can_embed_images(space):
        name, data = st.session_state[IMAGE]
        return Query("image", image_name=str(name), image=bytes(data))
    if mode == "examples" and positive:
        return Query("examples", positive=tuple(positive), negative=tuple(negative))
    return None


def add_example(point_id: str, positive: bool) -> None:
    """Move one id into the positive (more like this) or negative (less like this) list."""
    pos = [i for i in state.get_search_positive() if i != point_id]
    neg = [i for i in state.get_search_negative() if i != point_id]
    (pos if positive else neg).append(point_id)
    state.set_search_positive(pos)
    state.set_search_negative(neg)


def remove_example(point_id: str) -> None:
    state.set_search_positive([i for i in state.get_search_positive() if i != point_id])
    state.set_search_negative([i for i in state.get_search_negative() if i != point_id])


# -- input boxes -----------------------------------------------------------------------------------
def image_spaces(ctx: PageContext) -> list[str]:
    """Spaces of the project made by an image model (they can embed an uploaded image)."""
    assert ctx.project is not None
    return [s.name for s in ctx.store.list_spaces(ctx.project) if s.modality == "image" and s.model]


def text_box(ctx: PageContext) -> None:
    """The text-to-image search box, or a note naming the project's spaces with a text side."""
    assert ctx.project is not None and ctx.space_info is not None
    info = ctx.space_info
    if not search.has_text_side(info):
        others = [s for s in search.text_side_spaces(ctx.store, ctx.project) if s != ctx.space]
        hint = (f"Spaces of project {md(ctx.project)} that have one: "
                + ", ".join(md(o) for o in others) + " (choose one in the sidebar)."
                if others else
                f"No space of project {md(ctx.project)} has one: ingest the images with a CLIP "
                "model (e.g. openai/clip-vit-base-patch32) to search them by description.")
        st.info(f"Text search needs a space with a text side (a CLIP or text model); the space "
                f"{md(info.name)} ({md(info.modality)}, {md(info.model or 'uploaded vectors')}) has none. "
                f"{hint}", icon=":material/info:")
        return
    if TEXT_WIDGET not in st.session_state:
        st.session_state[TEXT_WIDGET] = st.session_state.get(TEXT, "")
    box, button = st.columns([6, 1], vertical_alignment="bottom")
    box.text_input("Describe what you are looking for", key=TEXT_WIDGET, on_change=_submit_text,
                   placeholder="e.g. a dog on a snowy street — press Enter")
    button.button("Search", key="search.text_go", on_click=_submit_text, type="primary",
                  icon=":material/search:", width="stretch")


def can_embed_images(space: SpaceInfo) -> bool:
    """True when the space was made by an image model (an uploaded image can be embedded)."""
    return space.modality == "image" and bool(space.model)


def image_box(ctx: PageContext) -> None:
    """Upload an image to search with (embedded by the space's own model), or a short note."""
    assert ctx.project is not None and ctx.space_info is not None
    info = ctx.space_info
    if not can_embed_images(info):
        others = [s for s in image_spaces(ctx) if s != ctx.space]
        where = (f"spaces made by an image model: {', '.join(md(o) for o in others)}" if others
                 else "no space of this project was made by an image model")
        st.caption(f"Search by uploaded image: not available in {md(info.name)} "
                   f"({md(info.model or 'uploaded vectors')}); {where}.")
        return
    st.file_uploader("Search by image", type=IMAGE_TYPES, key=UPLOAD_WIDGET, on_change=_on_upload,
                     help=f"Embedded with {md(info.model)}, the model that made this space.")


def _thumb_row(ids: Sequence[str], payloads: pd.DataFrame, key: str, columns: int = 10) -> None:
    """Small thumbnails of example ids with a remove button each."""
    cells = st.columns(columns)
    for n, point_id in enumerate(ids[: columns * 3]):
        with cells[n % columns]:
            known = point_id in payloads.index and URI in payloads.columns
            uri = payloads.at[point_id, URI] if known else None
            box = payloads.at[point_id, BOX] if known and BOX in payloads.columns else None
            data = point_thumbnail(point_id, uri, box, 96) if isinstance(uri, str) else None  # objects: the crop
            if data is not None:
                st.image(data, width="stretch")
            else:
                st.caption(md(point_id[:8]))
            st.button(":material/close:", key=f"{key}.rm.{point_id}", on_click=remove_example, args=(point_id,),
                      help="Remove this example", width="stretch")
    if len(ids) > columns * 3:
        st.caption(f"… and {len(ids) - columns * 3} more")


def examples_box(ctx: PageContext, payloads: pd.DataFrame) -> None:
    """The positive / negative example lists, with buttons to fill and clear them."""
    positive, negative = state.get_search_positive(), state.get_search_negative()
    selection = state.get_selection()
    left, right = st.columns(2)
    if left.button(f"Use the Explore selection ({len(selection):,})", key="search.ex.selection",
                   disabled=not selection, width="stretch",
                   help=f"The points selected on the Explore map (first {MAX_EXAMPLES}) become "
                        "the positive examples"):
        state.set_search_positive(selection[:MAX_EXAMPLES])
        state.set_search_negative([i for i in negative if i not in selection[:MAX_EXAMPLES]])
        st.rerun()
    if right.button("Clear examples", key="search.ex.clear", disabled=not (positive or negative),
                    width="stretch"):
        state.set_search_positive([])
        state.set_search_negative([])
        st.rerun()
    if not positive and not negative:
        st.caption("No examples yet: press **+ more like this** on any item below, use the "
                   "Explore selection, or **Find similar** in an item's detail view.")
        return
    st.markdown(f"**More like these** ({len(positive)})")
    _thumb_row(positive, payloads, "search.ex.pos")
    if negative:
        st.markdown(f"**Unlike these** ({len(negative)})")
        _thumb_row(negative, payloads, "search.ex.neg")


# -- running the query --------------------------------------------------------------------------
def search_filter(datasets: Sequence[str], flt: Filter | None) -> Filter:
    """Items (not detection objects) of the sidebar's datasets, narrowed by the filter widgets."""
    return items_only(Filter.datasets(datasets).and_(flt))


def _query_vector(ctx: PageContext, query: Query) -> np.ndarray:
    """(dim,) float32 unit vector of a text / image query; embedded once per session and query."""
    assert ctx.project is not None and ctx.space is not None and ctx.space_info is not None
    payload = query.text.encode() if query.mode == "text" else (query.image or b"")
    signature = (ctx.project, ctx.space, query.mode, hashlib.sha1(payload).hexdigest())
    cached = st.session_state.get(_VECTOR)
    if cached is not None and cached[0] == signature:
        return np.asarray(cached[1], dtype=np.float32)
    embedder = resources.get_embedder(ctx.space_info)
    if query.mode == "text":
        vector = search.text_query_vector(ctx.store, ctx.project, ctx.space, query.text,
                                          embedder=embedder)
    else:
        vector = search.image_query_vector(ctx.store, ctx.project, ctx.space, query.image or b"",
                                           embedder=embedder,
                                           max_pixels=ctx.settings.max_image_pixels)
    st.session_state[_VECTOR] = (signature, vector)
    return vector


def run_query(ctx: PageContext, query: Query, flt: Filter, *, limit: int,
              exact: bool, kind: str = ITEM_KIND) -> tuple[list[Hit], float]:
    """(hits best first, milliseconds the Qdrant query took) of the query over points of `kind`
    (items, or detection objects: ui.search_objects), filtered inside Qdrant. CoreError propagates."""
    assert ctx.project is not None and ctx.space is not None
    hits: list[Hit]
    if query.mode == "examples":
        started = time.perf_counter()
        hits = [*search.by_examples(ctx.store, ctx.project, ctx.space, query.positive,
                                   query.negative, flt=flt or None, limit=limit, exact=exact, kind=kind)]
    else:
        vector = _query_vector(ctx, query)  # embedding (and a first model load) not timed
        started = time.perf_counter()
        hits = search.by_vector(ctx.store, ctx.project, ctx.space, vector, flt=flt or None,
                                limit=limit, exact=exact, kind=kind)
    elapsed = (time.perf_counter() - started) * 1e3
    log.info("search %s in %s/%s: %d hits in %.0f ms", query.mode, ctx.project, ctx.space,
             len(hits), elapsed)
    return hits, elapsed


# -- what the scores mean ---------------------------------------------------------------------------
NEAREST_POSITIVE = "nearest positive"  # column: cosine to the closest positive example
NEAREST_NEGATIVE = "nearest negative"  # column: cosine to the closest negative example


def several_examples(query: Query) -> bool:
    """True when Qdrant's recommend query ranks (several positives, or negatives)."""
    return query.mode == "examples" and (len(query.positive) > 1 or bool(query.negative))


def score_note(query: Query) -> str:
    """One line saying what the score of this query's hits means."""
    if not several_examples(query):
        what = {"text": "query text", "image": "query image"}.get(query.mode, "example")
        return (f"Score: cosine similarity to the {what}, 1.00 = same direction (an identical copy), "
                "0 = unrelated.")
    unlike = (" An item closer to an unlike example than to every positive one gets minus its cosine "
              "to that example and ranks last." if query.negative else "")
    return ("Score: cosine similarity to the nearest positive example (1.00 = identical to one), "
            f"the order of Qdrant's recommend query.{unlike} "
            f"*{NEAREST_POSITIVE}*: cosine to the closest positive example.")


def cross_modal(query: Query, space: SpaceInfo) -> bool:
    """A text query in an image space (CLIP): its cosines are on another scale than image-image."""
    return query.mode == "text" and space.modality != "text"


CALIBRATION_JOB = "search.calibration"  # the key under which the page follows the calibration (ui.jobs_view)


def match_message(best: float, calibration: search.Calibration) -> tuple[bool, str] | None:
    """(no close match?, the line to show) for the best hit's cosine, or None without a usable
    calibration (a tiny space has no typical neighbour)."""
    if not calibration.usable:
        return None
    share = calibration.share_closer(best)
    if calibration.no_close_match(best):
        return True, (f"No close match: the best hit ({best:.2f}) is less similar than "
                      f"{int(share * 100)} % of items are to their nearest neighbour in this space.")
    return False, (f"Best hit {best:.2f}: at least as similar as {int((1 - share) * 100)} % of items are "
                   f"to their nearest neighbour here (median {calibration.quantile(0.5):.2f}).")


def space_calibration(ctx: PageContext, ids: Sequence[str]) -> search.Calibration | None:
    """The space's nearest-neighbour calibration (sampled from ids), measured once per space revision by a
    background job shared by every session (core.jobs.work.calibration; its on-disk cache makes a later
    one instant); None while it runs: the scores show without the "no close match" check meanwhile."""
    from core.jobs.work import calibration
    from ui import jobs_view
    from ui.actor import current_actor

    assert ctx.project is not None and ctx.space is not None
    spec = calibration(ctx.store, ctx.project, ctx.space, ids, actor=current_actor(),
                       cache_dir=ctx.settings.cache_dir / "search-calibration")
    job = jobs_view.track(CALIBRATION_JOB, "Measuring how close neighbours are in this space",
                          jobs_view.start(CALIBRATION_JOB, spec))
    return job.result if job is not None else None


def match_note(ctx: PageContext, query: Query, hits: Sequence[Hit], ids: Sequence[str]) -> None:
    """Says whether the best hit is close for this space (calibrated on its nearest-neighbour
    cosines, sampled from ids), with a warning when it is not. CoreError propagates."""
    assert ctx.project is not None and ctx.space is not None and ctx.space_info is not None
    best = search.best_cosine(hits)
    if best is None:
        return
    if cross_modal(query, ctx.space_info):
        st.caption("Text-to-image cosines run far lower than image-to-image ones (a good CLIP match "
                   "is often 0.25–0.35), so they are not compared with this space's neighbours.")
        return
    calibration = space_calibration(ctx, ids)
    verdict = match_message(best, calibration) if calibration is not None else None
    if verdict is None:  # not measured yet (its job's progress shows; the page reruns at its end), or tiny
        return
    far, line = verdict
    if far:
        st.warning(line, icon=":material/search_off:")
    else:
        st.caption(line)


def result_rows(hits: Sequence[Hit]) -> pd.DataFrame:
    """hits_frame of the hits, plus the nearest positive / negative cosines of example hits."""
    rows = hits_frame(list(hits))
    if not len(rows) or not isinstance(hits[0], search.ExampleHit):
        return rows
    example_hits = [h for h in hits if isinstance(h, search.ExampleHit)]
    rows[NEAREST_POSITIVE] = [h.nearest_positive for h in example_hits]
    if example_hits[0].nearest_negative is not None:
        rows[NEAREST_NEGATIVE] = [h.nearest_negative for h in example_hits]
    return rows


def card_fields(query: Query) -> tuple[str, ...]:
    """The caption fields of the result cards: the nearest-positive cosine too when several
    examples rank."""
    return (CARD_FIELDS[0], NEAREST_POSITIVE, *CARD_FIELDS[1:]) if several_examples(query) else CARD_FIELDS


# -- result cards ----------------------------------------------------------------------------------
def _card(point_id: str, row: pd.Series, key: str, fields: Sequence[str]) -> None:
    uri = row.get(URI)
    data = images.thumbnail(uri, 160) if isinstance(uri, str) and uri else None
    if data is not None:
        st.image(data, width="stretch")
    else:
        text = row.get("text")
        st.text(shorten(text, 160) if isinstance(text, str) and text else f"(no image) {point_id[:8]}")
    line = caption(row, fields)
    if line:
        st.caption(line)
    st.button("+ more like this", key=f"{key}.more.{point_id}", width="stretch",
              on_click=add_example, args=(point_id, True))
    st.button("− less like this", key=f"{key}.less.{point_id}", width="stretch",
              on_click=add_example, args=(point_id, False))


def result_cards(rows: pd.DataFrame, *, key: str = RESULT_KEY, columns: int = 6,
                 fields: Sequence[str] = CARD_FIELDS) -> None:
    """Cards (thumbnail, caption, "+ more like this" / "− less like this") for rows indexed by
    point id; the buttons update the example lists, and the rerun searches with them."""
    if rows.empty:
        st.caption("Nothing found. Widen the filters or change the query.")
        return
    for start in range(0, len(rows), columns):
        cells = st.columns(columns)
        for cell, (point_id, row) in zip(cells, rows.iloc[start:start + columns].iterrows(), strict=False):
            with cell:
                _card(str(point_id), row, key, fields)


def reshuffle() -> None:
    """Draw another random sample next (the "Shuffle" button)."""
    st.session_state[_SAMPLE_SEED] = int(st.session_state.get(_SAMPLE_SEED, 0)) + 1


def sample_rows(payloads: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """A random sample of the (filtered) payloads to pick first examples from; reshuffled by
    the "Shuffle" button (its seed lives in the session)."""
    seed = int(st.session_state.get(_SAMPLE_SEED, 0))
    if payloads.empty:
        return payloads
    return payloads.sample(n=min(n, len(payloads)), random_state=seed)


def go_to(page: str) -> None:
    """st.switch_page, or a hint when the page is not part of this app run (a page under test)."""
    try:
        st.switch_page(page)
    except StreamlitAPIException as e:
        log.info("cannot switch to %s: %s", page, e)
        name = page.rsplit("/", 1)[-1].removesuffix(".py").split("_", 1)[-1]
        st.info(f"Done. Open the {name} page from the sidebar.")


def show_on_map(ids: Sequence[str], space: str | None = None,
                datasets: Sequence[str] | None = None) -> None:
    """Highlight ids on the Explore map (optionally in another space / datasets) and go there."""
    state.set_highlight_ids(list(ids))
    if space is not None:
        state.set_space(space)
    if datasets is not None:
        state.set_datasets(list(datasets))
    go_to(EXPLORE_PAGE)
