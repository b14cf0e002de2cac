"""Display forms of user strings: one truncation rule for legends, hover text, grids and CLI tables.

The full value stays in the store and in every export; only what is shown is shortened, so a
5,000-character label cannot collapse a legend nor a 100 kB one flood a terminal.
"""

from __future__ import annotations

from typing import Any

DISPLAY_LIMIT = 80
ELLIPSIS = "…"
# Line breaks and other control whitespace become one space: a shown value stays on one line.
_ONE_LINE = str.maketrans({c: " " for c in "\r\n\t\v\f\x85\u2028\u2029"})


def shorten(value: Any, limit: int | None = DISPLAY_LIMIT) -> str:
    """str(value) on one line, cut to at most `limit` characters (the last one "…" when cut).

    None becomes "". limit None keeps the whole text (still on one line).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").translate(_ONE_LINE)
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS
