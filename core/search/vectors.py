"""Query vectors for search: texts and images embedded with a space's model, arithmetic over terms."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import cast

import numpy as np
from PIL import Image

from core.datasets.images import open_image
from core.embedders import embedder_for_space
from core.embedders.base import Embedder
from core.errors import (
    BadInputError,
    DimensionMismatchError,
    NotFoundError,
    UnsupportedOperationError,
)
from core.linalg import l2_normalise, row_norms
from core.store.base import VectorStore
from core.types import SpaceInfo

log = logging.getLogger(__name__)

# Decompression-bomb guard for query images (same default as Settings.max_image_pixels).
DEFAULT_MAX_PIXELS = 64_000_000
# Below this norm the arithmetic sum is considered empty (e.g. "a - a").
_MIN_NORM = 1e-6

# One arithmetic term: (+1 | -1, a point id of the space, a text, or a (dim,) vector).
Term = tuple[int, str | np.ndarray]


# -- helpers -----------------------------------------------------------------------------------
def has_text_side(space: SpaceInfo) -> bool:
    """True when free text can be embedded into the space (CLIP image spaces, text encoders)."""
    return space.text_side or space.modality == "text"


def text_side_spaces(store: VectorStore, project: str) -> list[str]:
    """Names of the project's spaces that text search works in, sorted."""
    return [s.name for s in store.list_spaces(project) if has_text_side(s)]


def unit_vector(vector: np.ndarray, what: str) -> np.ndarray:
    """(dim,) float32 with unit L2 norm; BadInputError when the vector is (close to) zero."""
    row = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    norm = float(row_norms(row)[0])
    if not np.isfinite(norm) or norm < _MIN_NORM:
        raise BadInputError(f"The query vector of {what} is zero or not finite: nothing to search for")
    return l2_normalise(row)[0]


def check_dim(space: SpaceInfo, vector: np.ndarray, what: str) -> None:
    if vector.shape[-1] != space.dim:
        raise DimensionMismatchError(
            f"{what} gives {vector.shape[-1]}-d vectors but space {space.name!r} holds {space.dim}-d vectors"
        )


def _resolve_embedder(space: SpaceInfo, embedder: Embedder | None) -> Embedder:
    # embedder_for_space keeps loaded models per process: asking again for a space is cheap.
    if embedder is not None:
        return embedder
    # cast: ModelEmbedder declares `modality` as a Literal, the protocol's attribute is a plain str.
    return cast(Embedder, embedder_for_space(space))


# -- query vectors -------------------------------------------------------------------------------
def text_query_vector(
    store: VectorStore, project: str, space: str, text: str, *, embedder: Embedder | None = None
) -> np.ndarray:
    """The query vector of a text in a space: (dim,) float32, L2-normalised.

    Raises UnsupportedOperationError when the space has no text side (names the spaces that do).
    """
    info = store.get_space(project, space)
    if not has_text_side(info):
        others = [name for name in text_side_spaces(store, project) if name != space]
        hint = (
            f"spaces of project {project!r} with a text side: {', '.join(others)}"
            if others
            else f"no space of project {project!r} has one (embed the images with a CLIP model)"
        )
        raise UnsupportedOperationError(
            f"Text search needs a space with a text side; space {space!r} "
            f"({info.modality}, model {info.model or 'uploaded vectors'}) has none: {hint}"
        )
    if not text.strip():
        raise BadInputError("The search text is empty")
    model = _resolve_embedder(info, embedder)
    vector = model.embed_texts([text])[0]
    check_dim(info, vector, f"model {model.model_id!r}")
    return unit_vector(vector, f"text {text!r}")


def _open_image(image: Image.Image | bytes, max_pixels: int) -> Image.Image:
    # The one opener ingest uses too (EXIF turn, alpha on white): a photo embeds the same as a query.
    return open_image(image, max_pixels, name="The query image")


def image_query_vector(
    store: VectorStore,
    project: str,
    space: str,
    image: Image.Image | bytes,
    *,
    embedder: Embedder | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The query vector of an image (PIL image or encoded bytes): (dim,) float32, L2-normalised."""
    info = store.get_space(project, space)
    if info.modality != "image" or (embedder is None and not info.model):
        raise UnsupportedOperationError(
            f"Image search needs a space made by an image model; space {space!r} is "
            f"{info.modality} ({info.model or 'uploaded vectors'})"
        )
    model = _resolve_embedder(info, embedder)
    vector = model.embed_images([_open_image(image, max_pixels)])[0]
    check_dim(info, vector, f"model {model.model_id!r}")
    return unit_vector(vector, "the query image")


def require_ids(store: VectorStore, project: str, space: str, ids: Sequence[str]) -> None:
    missing = sorted(set(ids) - store.existing_ids(project, space, list(ids)))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise NotFoundError(f"{len(missing)} example id(s) are not in space {space!r} of {project!r}: {shown}")


def _looks_like_id(value: str) -> bool:
    # Point ids are uuid strings (core.ids); anything else in an arithmetic term is text.
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def arithmetic_vector(
    store: VectorStore,
    project: str,
    space: str,
    terms: Sequence[Term],
    *,
    embedder: Embedder | None = None,
) -> tuple[np.ndarray, list[str]]:
    """normalise(sum of sign * unit(term))) and the stored ids used as terms.

    terms: (+1 | -1, value) where value is a point id of the space (its stored vector), a text
    (embedded with the space's text side) or a (dim,) vector. Returns ((dim,) float32 unit, ids).
    """
    if not terms:
        raise BadInputError("Embedding arithmetic needs at least one term")
    for sign, _ in terms:
        if sign not in (1, -1):
            raise ValueError(f"term signs must be +1 or -1, got {sign!r}")
    info = store.get_space(project, space)
    ids = [v for _, v in terms if isinstance(v, str) and _looks_like_id(v)]
    texts = [v for _, v in terms if isinstance(v, str) and not _looks_like_id(v)]
    resolved: dict[str, np.ndarray] = {}
    if ids:
        require_ids(store, project, space, ids)
        found, vecs = store.vectors(project, space, ids=list(dict.fromkeys(ids)))
        resolved.update(zip(found, vecs, strict=True))
    for text in dict.fromkeys(texts):
        resolved[text] = text_query_vector(store, project, space, text, embedder=embedder)
    total = np.zeros(info.dim, dtype=np.float32)
    for sign, value in terms:
        vec = resolved[value] if isinstance(value, str) else np.asarray(value, dtype=np.float32)
        check_dim(info, vec.reshape(-1), "an arithmetic term")
        total += sign * unit_vector(vec, "an arithmetic term")
    return unit_vector(total, "the arithmetic (the terms cancel out)"), list(dict.fromkeys(ids))
