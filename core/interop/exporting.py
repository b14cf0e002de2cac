"""Build the files of one export (Label Studio tasks + labeling config, COCO, CSV) from a set of items."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core import export
from core.config import Settings
from core.errors import BadInputError
from core.interop import coco, labelstudio
from core.interop.selection import project_classes
from core.interop.urls import image_url
from core.store.base import VectorStore
from core.types import KEY, URI

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("labelstudio", "coco", "csv", "jsonl")
CSV_EXTRA: tuple[str, ...] = ("suggested_label", "tags")


@dataclass
class ExportFiles:
    """What one export writes: (file name, bytes) pairs, the first the main file; notes for the user."""

    files: list[tuple[str, bytes]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UrlOptions:
    """How image paths become URLs (core.interop.urls.image_url): a file-server prefix and/or the
    local-files root."""

    prefix: str | None = None
    root: Path | None = None

    def url(self, row: pd.Series) -> str | None:
        uri = row.get(URI)
        key = row.get(KEY)
        return image_url(uri if isinstance(uri, str) else None, key if isinstance(key, str) else None,
                         prefix=self.prefix, root=self.root)


def json_bytes(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def build(store: VectorStore, settings: Settings, project: str, space: str, items: pd.DataFrame, fmt: str, *,
          stem: str, urls: UrlOptions | None = None) -> ExportFiles:
    """The files of `items` (payloads indexed by point id, core.interop.selection) in format fmt:
    labelstudio -> <stem>.labelstudio.json and <stem>.labeling-config.xml; coco -> <stem>.coco.json;
    csv / jsonl -> <stem>.csv / <stem>.jsonl (core.export's columns)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if items.empty:
        raise BadInputError("Nothing to export: the selection holds no item that is still in the store")
    urls = urls or UrlOptions()
    if fmt in ("csv", "jsonl"):
        frame = export.export_frame(items, [c for c in CSV_EXTRA if c in items.columns])
        return ExportFiles([(f"{stem}.{fmt}", export.to_csv(frame) if fmt == "csv" else export.to_jsonl(frame))])
    classes = project_classes(store, project, space, items)
    if fmt == "labelstudio":
        if not classes:  # a Choices control without a Choice leaves the annotator nothing to pick
            raise BadInputError("No class is known for these items (no label or prediction in their datasets): "
                                "export them as CSV, or label some items first")
        tasks, images, texts = labelstudio.to_tasks(items, url_of=urls.url, project=project)
        config = labelstudio.labeling_config(classes, images=images, texts=texts)
        notes = [f"{len(tasks)} tasks, {len(classes)} classes; paste {stem}.labeling-config.xml as the "
                 "project's labeling config (Settings > Labeling Interface > Code), then import the tasks"]
        if images and urls.prefix is None:
            root = urls.root or "/"
            notes.append(f"image URLs use Label Studio's local files: start it with "
                         f"LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root}")
        return ExportFiles([(f"{stem}.labelstudio.json", json_bytes(tasks)),
                            (f"{stem}.labeling-config.xml", config.encode("utf-8"))], notes)
    made = coco.to_coco(items, classes, size_of=lambda uri: coco.image_size(uri, settings),
                        url_of=urls.url, description=f"embedscope {project}/{space}")
    if not made.doc["images"]:
        raise BadInputError("Nothing to export as COCO: none of the items has a readable image file")
    notes = [f"{len(made.doc['images'])} images, {len(made.doc['annotations'])} image-level labels"]
    if made.skipped:
        notes.append(f"{len(made.skipped)} item(s) without a readable image left out: "
                     + ", ".join(made.skipped[:5]))
    return ExportFiles([(f"{stem}.coco.json", json_bytes(made.doc))], notes)
