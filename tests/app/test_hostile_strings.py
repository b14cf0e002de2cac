"""Every string Streamlit renders as Markdown (bodies, labels, help, captions, metric values) holds
user strings only in escaped form (ui.text.md), on every page, with the hostile corpus seeded
(tests/app/hostile.py); plus the escaping helpers themselves. The browser tier
(tests/browser/test_hostile_strings.py) shows that the escaped forms render as the literal text."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.display import shorten
from tests.app import hostile
from tests.app.conftest import run_page
from ui import state
from ui.text import WORD_JOINER, md, md_frame, plotly_text

# Substrings only an unescaped hostile string contains (escaping puts a backslash before each
# punctuation character), found where no backslash precedes them.
RAW_MARKERS = ("**bold**", "_it_", "$x^2$", ":red[", "![img]", "<b style", "[click](", "$$split$$",
               ":blue[", "**mkey**", "**desc**", "![d](", "![s](", "](http", "<img", "LLLLL" * 20)
_RAW = re.compile("|".join(rf"(?<!\\){re.escape(m)}" for m in RAW_MARKERS))
# Proto fields Streamlit renders as Markdown; Text / Code elements and options are plain text.
MARKDOWN_FIELDS = {"body", "label", "help", "caption", "delta", "text"}
PLAIN_PROTOS = {"Text", "Code"}


def _strings(message: Any, proto_name: str) -> Iterator[tuple[str, str, str]]:
    """(proto type, field, value) of every string field, nested messages included."""
    for field, value in message.ListFields():
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for item in values:
            if isinstance(item, str):
                yield proto_name, field.name, item
            elif hasattr(item, "ListFields"):
                yield from _strings(item, proto_name)


def markdown_strings(at: AppTest) -> list[str]:
    """Every string of the run that Streamlit renders as Markdown."""
    found: list[str] = []
    stack: list[Any] = [at._tree]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "children", {}).values())
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        name = type(proto).__name__
        found += [value for kind, field, value in _strings(proto, name)
                  if field in MARKDOWN_FIELDS and kind not in PLAIN_PROTOS]
    return found


def _assert_escaped(at: AppTest, *expected: str) -> None:
    assert not at.exception, at.exception
    shown = markdown_strings(at)
    raw = [s[:200] for s in shown if _RAW.search(s)]
    assert not raw, raw
    text = "\n".join(shown)
    missing = [e for e in expected if md(e) not in text]
    assert not missing, missing  # the surface was really drawn, with the escaped string


@pytest.fixture
def hostile_store(app_env: Settings) -> hostile.HostileSeed:
    return hostile.seed_hostile(app_env, with_map=False)


def _page(path: str, **session: Any) -> AppTest:
    at = run_page(path, timeout=300)
    for key, value in session.items():
        at.session_state[key] = value
    return at.run()


def test_home_tables_and_names_are_escaped(hostile_store: hostile.HostileSeed) -> None:
    at = _page("Home.py")
    _assert_escaped(at, hostile.PROJECT)
    labels = at.table[2].value  # st.table renders its cells as Markdown too
    assert md(hostile.LABELS[3]) in set(labels.index)
    assert not [i for i in labels.index if _RAW.search(str(i))]


def test_explore_map_problems_and_detail_are_escaped(hostile_store: hostile.HostileSeed) -> None:
    # The corpus is clean (no likely mislabels): the full ranking's grid draws the labels.
    at = _page("pages/2_Explore.py", **{"explore.method": "PCA", "explore.problems.mislabel.full": True})
    _assert_escaped(at, "suggested_label")  # the Problems panel's grids are drawn
    at.selectbox(key="explore.colour").set_value(f"meta.{hostile.META_KEY}").run()
    _assert_escaped(at)
    # One item opened in the detail view: its key as the image caption, its neighbours' grid.
    at = _page("pages/2_Explore.py", **{"explore.method": "PCA",
                                         state.DETAIL_ID: hostile_store.ids[5]})
    _assert_escaped(at)
    assert any("Nearest neighbours" in s for s in markdown_strings(at))


def test_explore_legend_and_hover_are_plotly_text(hostile_store: hostile.HostileSeed) -> None:
    import json

    at = _page("pages/2_Explore.py", **{"explore.method": "PCA"})
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t.get("name") for t in spec["data"]}
    assert plotly_text(hostile.LABELS[2]) in names  # <b ...> escaped for plotly
    assert max(len(n or "") for n in names) <= 80  # the 5,000-character label is shortened
    # No per-point text reaches plotly any more (issue 11: the hover caption comes from the server
    # and is shown with textContent); the caption itself is one short line.
    assert not [t for trace in spec["data"] for t in (trace.get("text") or trace.get("hovertext") or [])]
    from ui.widgets.hover_preview import caption

    long_label = max(hostile.LABELS, key=len)
    assert len(caption(pd.Series({"label": long_label, "dataset": "d", "key": "k"}))) <= 80 + 10
    at.selectbox(key="explore.colour").set_value(f"meta.{hostile.META_KEY}").run()
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["legend"]["title"]["text"] == plotly_text(f"meta.{hostile.META_KEY}")


def test_search_results_are_escaped(hostile_store: hostile.HostileSeed) -> None:
    at = _page("pages/3_Search.py")
    _assert_escaped(at)
    at = _page("pages/3_Search.py", **{state.SEARCH_POSITIVE: hostile_store.ids[4:6]})
    _assert_escaped(at, "more like 2 example(s)")
    assert len([b for b in at.button if b.key and b.key.startswith("search.res.more.")]) >= 6


def test_compare_of_hostile_splits_is_escaped(hostile_store: hostile.HostileSeed) -> None:
    at = _page("pages/4_Compare.py", **{"compare.method": "PCA"})
    _assert_escaped(at, hostile.SPLITS[0])


def test_collection_page_is_escaped(hostile_store: hostile.HostileSeed) -> None:
    at = _page("pages/5_Collections.py")
    _assert_escaped(at, hostile.COLLECTION, hostile.DESCRIPTION)


# -- the helpers --------------------------------------------------------------------------------
def _unescape(markdown: str) -> str:
    """What CommonMark shows for md()'s output: escapes resolved, entities and joiners dropped."""
    text = re.sub(r"\\(.)", r"\1", markdown.replace("&#32;", " "))
    return text.replace(WORD_JOINER, "")


@given(st.text(max_size=200))
def test_md_shows_exactly_the_text(value: str) -> None:
    out = md(value, limit=None)
    assert _unescape(out) == shorten(value, None)
    # Every ASCII punctuation character is escaped: no Markdown, HTML, math or directive syntax.
    assert not re.search(r"(?<!\\)[!-/:-@\[-`{-~]", re.sub(r"\\.|&#32;", "", out))
    assert "\n" not in out and not out.startswith(" ")


@pytest.mark.parametrize("value", ["http://evil.test/a", "www.evil.test", "x@evil.test",
                                   "a -> b", ":streamlit:", "a >= b"])
def test_md_breaks_what_streamlit_rewrites_after_escapes(value: str) -> None:
    # GFM autolinks and Streamlit's typography work on text after escapes are resolved: an
    # invisible word joiner keeps them from matching (the browser test shows the text as typed).
    assert WORD_JOINER in md(value)


def test_md_shortens_to_one_line_and_leading_spaces_are_no_code_block() -> None:
    assert md("a\nb") == "a b"
    assert md("    code").startswith("&#32;" * 4)
    assert len(_unescape(md("x" * 5000))) == 80 and md("x" * 5000).endswith("…")


@given(st.text(max_size=100))
def test_plotly_text_escapes_html_and_template_placeholders(value: str) -> None:
    out = plotly_text(value, limit=None)
    assert "<" not in out and ">" not in out and "%" not in out
    assert re.sub(r"&(#37|lt|gt|amp);", "_", out).count("&") == 0


def test_md_frame_escapes_cells_index_and_header_but_not_numbers() -> None:
    import pandas as pd

    frame = md_frame(pd.DataFrame({"**c**": ["$x$", 1.5]}, index=pd.Index(["_i_", "j"], name="n")))
    assert list(frame.columns) == [md("**c**")] and list(frame.index) == [md("_i_"), "j"]
    assert frame.iloc[0, 0] == md("$x$") and frame.iloc[1, 0] == 1.5
