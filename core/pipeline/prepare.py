"""Turn batches of Items into model input in worker threads, ahead of the model (decode, preprocess)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from PIL import Image

from core.config import Settings
from core.datasets.images import load_image, shown
from core.embedders.base import Embedder, PreprocessingEmbedder
from core.errors import BadInputError
from core.types import Item, Reject

log = logging.getLogger(__name__)

Batch = list[tuple[str, Item]]  # (point id, item)
B = TypeVar("B")  # a batch of work (prepared_batches serves any kind: Batch, detection images...)
R = TypeVar("R")  # what preparing it gives


@dataclass
class Prepared:
    """One batch ready for the model: the surviving items, their input, and the rejects.

    inputs: (n, 3, H, W) float32 from embedder.preprocess, or n PIL images (embedders without a
    separate preprocess), or n texts.
    """

    ids: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    inputs: np.ndarray | list[Image.Image] | list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def prepare_texts(batch: Batch) -> Prepared:
    """Keep items with usable text; empty text and text that was not valid UTF-8 are rejects."""
    out = Prepared()
    texts: list[str] = []
    for pid, item in batch:
        if item.text is None or not item.text.strip():
            out.rejects.append(Reject(item, "empty text"))
        elif "\ufffd" in item.text:
            # Readers decode with errors="replace": U+FFFD marks bytes that were not UTF-8.
            out.rejects.append(Reject(item, "text is not valid UTF-8"))
        else:
            out.ids.append(pid)
            out.items.append(item)
            texts.append(item.text)
    out.inputs = texts
    return out


def prepare_images(batch: Batch, embedder: Embedder, settings: Settings) -> Prepared:
    """Decode each image safely (load_image), then preprocess the batch for the model."""
    out = Prepared()
    images: list[Image.Image] = []
    for pid, item in batch:
        if not item.uri:
            out.rejects.append(Reject(item, "no image path or uri"))
            continue
        try:
            images.append(load_image(item.uri, settings))
        except BadInputError as e:
            out.rejects.append(Reject(item, str(e)))
            continue
        except Exception as e:  # noqa: BLE001 - one odd file must never stop the whole ingest
            out.rejects.append(unexpected(item, e))
            continue
        out.ids.append(pid)
        out.items.append(item)
    if isinstance(embedder, PreprocessingEmbedder) and images:
        return _preprocess(out, images, embedder)
    out.inputs = images
    return out


def unexpected(item: Item, error: Exception) -> Reject:
    """The reject of an item whose preparation failed in a way no reader foresaw (named, logged)."""
    log.warning("%s: unexpected %s while preparing it", shown(item.uri or item.key), type(error).__name__,
                exc_info=error)
    return Reject(item, f"{shown(item.uri or item.key)}: unexpected {type(error).__name__} ({shown(str(error))})")


def _preprocess(out: Prepared, images: list[Image.Image], embedder: PreprocessingEmbedder) -> Prepared:
    """Preprocess the whole batch; if that fails, one by one so only the culprit is rejected."""
    try:
        out.inputs = embedder.preprocess(images)
        return out
    except Exception as e:  # noqa: BLE001 - retried one by one below, so only the culprit is rejected
        log.warning("preprocessing a batch failed (%s: %s); retrying image by image", type(e).__name__, e)
    kept = Prepared(rejects=out.rejects)
    arrays: list[np.ndarray] = []
    for pid, item, image in zip(out.ids, out.items, images, strict=True):
        try:
            arrays.append(embedder.preprocess([image]))
        except Exception as e:  # noqa: BLE001 - the model's processor may raise anything on one image
            kept.rejects.append(Reject(item, f"{shown(item.uri or item.key)}: the model cannot preprocess it "
                                             f"({type(e).__name__}: {shown(str(e))})"))
            continue
        kept.ids.append(pid)
        kept.items.append(item)
    kept.inputs = np.concatenate(arrays) if arrays else np.empty((0,), dtype=np.float32)
    return kept


def prepared_batches(
    batches: Sequence[B], prepare: Callable[[B], R], workers: int
) -> Generator[R, None, None]:
    """Prepared batches in order. With workers > 0, up to workers + 1 batches are prepared in
    threads ahead of the consumer (PIL decoding and numpy release the GIL), so the model runs
    batch i while batches i+1.. are decoded; memory stays bounded by that window."""
    if workers <= 0:
        yield from (prepare(batch) for batch in batches)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-decode")
    pending: deque[Future[R]] = deque()
    upcoming = iter(batches)
    try:
        for batch in upcoming:
            pending.append(pool.submit(prepare, batch))
            if len(pending) > workers:
                break
        while pending:
            ready = pending.popleft().result()
            next_batch = next(upcoming, None)
            if next_batch is not None:
                pending.append(pool.submit(prepare, next_batch))
            yield ready
    finally:
        # An interrupted ingest (error, Ctrl-C, generator closed) must not keep decoding.
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
