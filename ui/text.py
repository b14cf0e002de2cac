"""User strings shown as text, never as markup: md() for Streamlit Markdown, plotly_text() for Plotly.

Streamlit renders Markdown in st.markdown / caption / info / warning / error / success / title /
subheader, in widget labels, help tooltips, tab and expander labels and metric labels: links,
images, emphasis, `$math$` (KaTeX), `:red[...]` colour directives, `:material/x:` icons, emoji
shortcodes and GFM autolinks (www.x.com). Plotly renders an HTML subset (<b>, <a href>, <span
style>, entities) in trace names, legend and colour-bar titles, axis labels and hover text, and
`%{...}` in a hovertemplate. Every user string (labels, predictions, metadata keys and values,
dataset / collection / split names, keys, uris, error messages quoting input) goes through one of
these (HTML built by hand: ui.html.esc), after core.display.shorten for the one-line length.
"""

from __future__ import annotations

import html
import re
import string
from typing import Any

import pandas as pd

from core.display import DISPLAY_LIMIT, shorten

# CommonMark: a backslash before any ASCII punctuation character makes it a literal character.
_MD_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})
WORD_JOINER = "\u2060"
# Streamlit rewrites these in text *after* escapes are resolved, so a backslash cannot stop them:
# GFM autolinks (`http://`, `www.`, `a@b.c` become links), typography (`a -> b` shows `a → b`)
# and `:streamlit:` (an image). An invisible word joiner inside the token keeps it as typed.
_REWRITTEN = re.compile(r"(?<!\S)(?:<->|->|<-|--|>=|<=|~=)(?!\S)|:streamlit:|://|www\.|@",
                        re.IGNORECASE)


def _join(match: re.Match[str]) -> str:
    token = match.group(0)
    at = len(token) - 1 if token[-1] in ".@" else 1  # the joiner goes: www|.  |@  :|//  -|>
    return token[:at] + WORD_JOINER + token[at:]


def md(value: Any, limit: int | None = DISPLAY_LIMIT) -> str:
    """`value` as Streamlit Markdown that shows exactly its text (one line, `limit` characters).

    Use for every user string inside an st.* text, a widget label or help, or a radio option
    (selectbox / multiselect options are plain text: use core.display.shorten there):
    `st.caption(f"Space {md(space)}")`. limit None keeps the whole text (error messages).
    """
    text = _REWRITTEN.sub(_join, shorten(value, limit)).translate(_MD_ESCAPES)
    # Leading spaces could start an indented code block: a character reference is not indentation.
    stripped = text.lstrip(" ")
    return "&#32;" * (len(text) - len(stripped)) + stripped


def plotly_text(value: Any, limit: int | None = DISPLAY_LIMIT) -> str:
    """`value` as Plotly label text that shows exactly its text: trace names, legend / colour-bar /
    axis titles, per-point text and hover text, and literal parts of a hovertemplate (a `%` is
    written as a character reference so `%{...}` in a user string is no placeholder)."""
    return html.escape(shorten(value, limit), quote=False).replace("%", "&#37;")


def md_frame(frame: pd.DataFrame, limit: int | None = DISPLAY_LIMIT) -> pd.DataFrame:
    """A copy for st.table, which renders every cell, header and index value as Markdown: text
    values go through md(); numbers and booleans stay as they are."""
    def cell(value: Any) -> Any:
        return md(value, limit) if isinstance(value, str) else value

    out = frame.copy()
    out.columns = pd.Index([cell(c) for c in out.columns], name=cell(out.columns.name))
    out.index = pd.Index([cell(i) for i in out.index], name=cell(out.index.name))
    for position, dtype in enumerate(out.dtypes):
        if pd.api.types.is_object_dtype(dtype):
            out.isetitem(position, out.iloc[:, position].map(cell))
    return out
