"""Search: by text, image, examples and embedding arithmetic over one space, filters in Qdrant.

Usable from a notebook, the CLI and the dashboard:

    from core import search
    hits = search.by_text(store, "demo", "clip-vit-base-patch32", "a dog on snow",
                          flt=parse_filter(["label is missing"]), limit=20)
    # Scores are cosines (1.0 = same direction). Is the best hit close, for this space? (Not for
    # text in an image space: CLIP's text-image cosines run far below image-image ones.)
    hits = search.by_examples(store, "demo", "clip-vit-base-patch32", [point_id])
    search.calibrate(store, "demo", "clip-vit-base-patch32").no_close_match(search.best_cosine(hits))
"""

from core.search.calibration import Calibration, calibrate
from core.search.objects import OBJECT_COLUMNS, POINTS, ObjectChoice, has_objects, kind_filter, merged, object_filters
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
from core.search.scores import ExampleHit, best_cosine, decode_recommend_score
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
    "OBJECT_COLUMNS",
    "POINTS",
    "ObjectChoice",
    "Calibration",
    "ExactComparison",
    "ExampleHit",
    "Term",
    "arithmetic_vector",
    "by_arithmetic",
    "by_examples",
    "by_image",
    "by_text",
    "best_cosine",
    "by_vector",
    "calibrate",
    "compare_exact",
    "decode_recommend_score",
    "has_objects",
    "has_text_side",
    "kind_filter",
    "merged",
    "object_filters",
    "image_query_vector",
    "text_query_vector",
    "text_side_spaces",
]
