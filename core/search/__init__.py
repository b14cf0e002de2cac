"""Search: by text, image, examples and embedding arithmetic over one space, filters in Qdrant.

Usable from a notebook, the CLI and the dashboard:

    from core import search
    hits = search.by_text(store, "demo", "clip-vit-base-patch32", "a dog on snow",
                          flt=parse_filter(["label is missing"]), limit=20)
"""

from core.search.queries import (
    DISPLAY_FIELDS,
    ExactComparison,
    by_arithmetic,
    by_examples,
    by_image,
    by_text,
    by_vector,
    compare_exact,
)
from core.search.vectors import (
    Term,
    arithmetic_vector,
    has_text_side,
    image_query_vector,
    text_query_vector,
    text_side_spaces,
)

__all__ = [
    "DISPLAY_FIELDS",
    "ExactComparison",
    "Term",
    "arithmetic_vector",
    "by_arithmetic",
    "by_examples",
    "by_image",
    "by_text",
    "by_vector",
    "compare_exact",
    "has_text_side",
    "image_query_vector",
    "text_query_vector",
    "text_side_spaces",
]
