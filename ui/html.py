"""HTML escaping and tiny HTML builders: every user string reaching unsafe_allow_html goes through esc()."""

from __future__ import annotations

import html
from typing import Any, Mapping


def esc(text: Any) -> str:
    """Escape any value for HTML text or a quoted attribute; None becomes the empty string."""
    if text is None:
        return ""
    return html.escape(str(text), quote=True)


def tag(name: str, text: Any = "", **attrs: Any) -> str:
    """`<name attr="...">text</name>` with the text and every attribute value escaped.

    name is code, not user input: only [a-z0-9] tag names are accepted. `class_` maps to `class`.
    """
    if not name.isalnum():
        raise ValueError(f"tag name must be alphanumeric, got {name!r}")
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{esc(value)}"')
    return f"<{' '.join(parts)}>{esc(text)}</{name}>"


def badge(text: Any, color: str = "#555") -> str:
    """A small rounded label (e.g. a class name) as HTML; text escaped, color must be a #hex value."""
    if not (color.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
        raise ValueError(f"color must be a #hex value, got {color!r}")
    style = (f"background:{color};color:white;border-radius:0.6em;padding:0.05em 0.5em;"
             "font-size:0.8em;white-space:nowrap")
    return f'<span style="{style}">{esc(text)}</span>'


def kv_table(values: Mapping[str, Any]) -> str:
    """A two-column HTML table of field -> value, everything escaped."""
    rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th>"
                   f"<td>{esc(v)}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"
