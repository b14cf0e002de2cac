"""Object crops for the UI: a point's picture is its crop when it is a detection object, else its image's.

The grid, the hover preview, the map's zoomed-in pictures and the table call point_thumbnail /
point_data_uri with a row's id, uri and box: a row without a box (an image) gets ui.images'
thumbnail, an object the crop thumbnail of core.thumbnails.object_thumbnail (written at ingest,
keyed by the object's point id; else cut once from its image under the data roots and cached).
"""

from __future__ import annotations

import base64
from typing import Any

from core.config import Settings
from core.thumbnails import object_thumbnail
from ui import images
from ui.objects import as_box


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from ui.resources import get_settings

    return get_settings()


def point_thumbnail(point_id: Any, uri: Any, box: Any = None, size: int = 128,
                    settings: Settings | None = None) -> bytes | None:
    """JPEG bytes of a point's picture fitted into size x size: its object crop when it has a box,
    else its image's thumbnail; None without an image under the data roots."""
    if not isinstance(uri, str) or not uri:
        return None
    rect = as_box(box)
    if rect is None:
        return images.thumbnail(uri, size, settings)
    if images.safe_path(uri, _settings(settings)) is None:  # the same roots rule as every image
        return None
    return object_thumbnail(_settings(settings), str(point_id), uri, rect, size)


def point_data_uri(point_id: Any, uri: Any, box: Any = None, size: int = 128,
                   settings: Settings | None = None) -> str | None:
    """point_thumbnail as a `data:image/jpeg;base64,...` URI for HTML, or None."""
    data = point_thumbnail(point_id, uri, box, size, settings)
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
