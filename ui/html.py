"""HTML escaping: every user string reaching unsafe_allow_html goes through esc()."""

from __future__ import annotations

import html
from typing import Any


def esc(text: Any) -> str:
    """Escape any value for HTML text or a quoted attribute; None becomes the empty string."""
    if text is None:
        return ""
    return html.escape(str(text), quote=True)
