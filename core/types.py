"""Plain data types shared across core: embedding spaces, search hits, payload field names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Modality = Literal["image", "text", "vector"]

# The one progress-callback type of core: progress(done, total), called from the worker doing the
# work; done counts whatever unit the caller documents (items, points, steps), 0 <= done <= total.
Progress = Callable[[int, int], None]

# Payload fields every point carries (None where unknown). Filters and the UI use these names;
# user metadata lives under META as a nested object so `meta.<column>` paths filter on it.
DATASET = "dataset"
KEY = "key"
URI = "uri"
TEXT = "text"
LABEL = "label"
PREDICTION = "prediction"
CONFIDENCE = "confidence"
SPLIT = "split"
META = "meta"
KIND = "kind"  # required on every point: ITEM_KIND for a datapoint, OBJECT_KIND for a detection object
ITEM_KIND = "item"
OBJECT_KIND = "object"
KINDS: tuple[str, ...] = (ITEM_KIND, OBJECT_KIND)
PARENT = "parent"  # for objects: the point id of the item they belong to
BOX = "box"  # for objects: [x0, y0, x1, y1] in pixels
SOURCE = "source"  # for objects: "label" or "prediction"
LABEL_SOURCE = "label"  # SOURCE value of a ground-truth box
PREDICTION_SOURCE = "prediction"  # SOURCE value of a detector's box
OBJECT_SOURCES: tuple[str, ...] = (LABEL_SOURCE, PREDICTION_SOURCE)
MATCH = "match"  # for objects: the matching status (core.analysis.box_matching.MATCH_STATUSES)
IOU = "iou"  # for objects: best IoU with the matched / nearest box of the other source (float or None)
MATCH_ID = "match_id"  # for objects: the point id of the matched partner (or None)
BOX_AREA = "box_area"  # for objects: box width * height in pixels (size filters)
# Curation fields (core.curation), written after ingest through set_payload, shared by every user.
TAGS = "tags"  # list[str]; a keyword index matches points whose list contains the value
REVIEWED = "reviewed"  # bool: a person looked at the item
ORIGINAL_LABEL = "original_label"  # the label before the first change (set once, never overwritten)

# Fields that get a keyword payload index (people filter by them).
KEYWORD_FIELDS: tuple[str, ...] = (DATASET, KEY, LABEL, PREDICTION, SPLIT, KIND, PARENT, SOURCE, TAGS, MATCH)
# Fields that get a float payload index (range filters).
FLOAT_FIELDS: tuple[str, ...] = (CONFIDENCE, BOX_AREA, IOU)


@dataclass(frozen=True)
class SpaceInfo:
    """One embedding space of a project: a model (+ layer), or the user's own vectors.

    name: short identifier, unique inside a project (e.g. "clip-vit-b-32", "own").
    dim: vector size; every vector stored in the space has exactly this size.
    modality: what the space embeds: "image", "text", or "vector" (uploaded, no model).
    model: hub name or local directory of the model that made the vectors (None for uploads).
    layer: which layer ("pooled" by default, or e.g. "hidden:-2").
    text_side: True when free text can be embedded into this space (CLIP, text encoders).
    """

    name: str
    dim: int
    modality: Modality
    model: str | None = None
    layer: str | None = None
    text_side: bool = False
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "modality": self.modality,
            "model": self.model,
            "layer": self.layer,
            "text_side": self.text_side,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpaceInfo:
        return cls(
            name=str(data["name"]),
            dim=int(data["dim"]),
            modality=data.get("modality", "vector"),
            model=data.get("model"),
            layer=data.get("layer"),
            text_side=bool(data.get("text_side", False)),
            description=str(data.get("description", "")),
        )


@dataclass(frozen=True)
class Hit:
    """One search result: the point id, its similarity score (cosine, higher is closer), its payload."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset inside a project, with its point count per embedding space."""

    project: str
    name: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One datapoint to ingest, before embedding.

    key: unique inside its dataset (relative path, manifest id...); hashed into the point id.
    uri: the image path (absolute, under a data root) or URL; None for text items.
    text: the text to embed, for text datasets.
    meta: every other column of the manifest, JSON-serialisable values only.
    """

    key: str
    uri: str | None = None
    text: str | None = None
    label: str | None = None
    prediction: str | None = None
    confidence: float | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def payload(self, dataset: str) -> dict[str, Any]:
        """The Qdrant payload of this item (None fields are kept so 'is missing' filters work)."""
        return {
            DATASET: dataset,
            KEY: self.key,
            URI: self.uri,
            TEXT: self.text,
            LABEL: self.label,
            PREDICTION: self.prediction,
            CONFIDENCE: self.confidence,
            SPLIT: self.split,
            META: dict(self.meta),
            KIND: ITEM_KIND,
        }


@dataclass(frozen=True)
class Reject:
    """One item that could not be stored, and why (missing file, corrupt image, empty text...)."""

    item: Item
    reason: str

    @property
    def key(self) -> str:
        return self.item.key

    @property
    def uri(self) -> str | None:
        return self.item.uri
