"""The worker side of a detection ingest: decode each image once, write its thumbnails, prepare model input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np
from PIL import Image

from core.config import Settings
from core.datasets.crops import crop_boxes
from core.datasets.detections import DetObject
from core.datasets.images import load_image, shown
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.errors import BadBoxError, BadInputError
from core.pipeline.objects_plan import Todo, object_reject
from core.pipeline.prepare import unexpected
from core.thumbnails import write_image_thumbnail, write_object_thumbnails
from core.types import Reject

log = logging.getLogger(__name__)


Boxes = list[tuple[str, DetObject]]  # (object point id, object)
T = TypeVar("T")


@dataclass
class Decoded:
    """One batch of images decoded in a worker thread: the readable ones (todo), the model input of
    those whose image point is missing (rows: positions into todo), and the rejects. Crop mode: the
    boxes' crops are cut here (boxes: (position in todo, object id, object), parallel to crop_inputs)
    and the decoded image is dropped; ROI mode: the images (parallel to todo) go to the model thread."""

    size: int
    todo: list[Todo] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    inputs: np.ndarray | list[Image.Image] = field(default_factory=list)
    boxes: list[tuple[int, str, DetObject]] = field(default_factory=list)
    crop_inputs: np.ndarray | list[Image.Image] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def decode_batch(batch: list[Todo], embedder: Embedder, settings: Settings, mode: str, margin: float) -> Decoded:
    """In a worker thread: decode each image once, write its thumbnails (image and crops), preprocess
    the images whose point is missing and (crop mode) cut and preprocess the missing boxes' crops,
    so the model thread only runs the model (core.embedders.objects.embed_image_objects's crop mode:
    the model's image vectors of crop_boxes' crops)."""
    out = Decoded(len(batch))
    point_images: list[Image.Image] = []
    crops: list[Image.Image] = []
    for todo in batch:
        image = _load(todo, settings, out.rejects)
        if image is None:
            continue
        if todo.image_missing:
            write_image_thumbnail(str(todo.item.uri), image, settings)
            out.rows.append(len(out.todo))
            point_images.append(image)
        write_object_thumbnails(image, [(oid, obj.box.to_list()) for oid, obj in todo.boxes], settings)
        if mode == "crop":
            cut = partial(_crops, image, margin, shown(todo.item.uri or todo.item.key))
            kept, pieces = without_bad_boxes(todo, cut, out.rejects)
            out.boxes += [(len(out.todo), oid, obj) for oid, obj in kept]
            crops += pieces or []
        else:
            out.images.append(image)
        out.todo.append(todo)
    out.inputs = model_input(embedder, point_images)
    out.crop_inputs = model_input(embedder, crops)
    return out


def _load(todo: Todo, settings: Settings, rejects: list[Reject]) -> Image.Image | None:
    """The decoded image, or None with its rejects (the image's and its missing boxes') appended."""
    try:
        if not todo.item.uri:
            raise BadInputError("no image path or uri")
        return load_image(todo.item.uri, settings)
    except BadInputError as e:
        rejects.extend(image_rejects(todo, Reject(todo.item, str(e))))
    except Exception as e:  # noqa: BLE001 - one odd file must never stop the whole ingest
        rejects.extend(image_rejects(todo, unexpected(todo.item, e)))
    return None


def _crops(image: Image.Image, margin: float, name: str, objects: list[DetObject]) -> list[Image.Image]:
    return crop_boxes(image, [obj.box for obj in objects], margin=margin, name=name)


def without_bad_boxes(todo: Todo, cut: Callable[[list[DetObject]], T],
                      rejects: list[Reject]) -> tuple[Boxes, T | None]:
    """(the boxes kept, cut(their objects)): a box BadBoxError names (nothing of it inside the image)
    becomes a reject and the others are retried; any other BadInputError rejects the boxes left
    ([], None). Other errors (the model) propagate."""
    boxes = list(todo.boxes)
    while boxes:
        try:
            return boxes, cut([obj for _, obj in boxes])
        except BadBoxError as e:
            if not 0 <= e.index < len(boxes):
                raise
            rejects.append(object_reject(boxes.pop(e.index)[1], todo.item.uri, str(e)))
        except BadInputError as e:
            rejects.extend(object_reject(obj, todo.item.uri, str(e)) for _, obj in boxes)
            break
    return [], None


def image_rejects(todo: Todo, reject: Reject) -> list[Reject]:
    """An unreadable image: its own reject (when its point is missing) and one per missing box."""
    boxes = [object_reject(obj, todo.item.uri, f"its image was rejected: {reject.reason}") for _, obj in todo.boxes]
    return [reject, *boxes] if todo.image_missing else boxes


def model_input(embedder: Embedder, images: list[Image.Image]) -> np.ndarray | list[Image.Image]:
    """Preprocessed (n, 3, H, W) when the embedder can preprocess apart (here, in the worker), else the images."""
    if not images or not isinstance(embedder, PreprocessingEmbedder):
        return images
    try:
        return embedder.preprocess(images)
    except Exception as e:  # noqa: BLE001 - the model's processor may raise anything: embed_images decides
        log.warning("preprocessing a batch failed (%s: %s); embedding the images directly", type(e).__name__, e)
        return images
