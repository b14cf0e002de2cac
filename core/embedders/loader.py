"""load_embedder / embedder_for_space: resolve a model name, load it once per process, wrap it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Literal

from core.embedders import runtime
from core.embedders.backend import Backend
from core.embedders.efficientnet import load_efficientnet
from core.embedders.embedder import ModelEmbedder
from core.embedders.hf import load_hf
from core.embedders.naming import EFFICIENTNET_LITE0, packaged_dir, parse_layer, space_name_for
from core.errors import DimensionMismatchError, ModelLoadError, UnsupportedOperationError
from core.types import SpaceInfo

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("image", "text", "auto")

# (model id, layer, device, precision) -> loaded backend. Loading is serialised by one lock:
# two dashboard sessions asking for the same model must not load it twice.
_BACKENDS: dict[tuple[str, str | None, str, str], Backend] = {}
_LOAD_LOCK = threading.Lock()


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or "\\" in model or model.count("/") > 1


def _resolve(model: str) -> tuple[str, str]:
    """(model id to record, source to load from): an absolute local dir, a packaged dir, or a hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path} has no config.json, so it is not a saved Hugging Face model "
                "(create one with model.save_pretrained(dir) and processor.save_pretrained(dir))"
            )
        resolved = str(path.resolve())
        return resolved, resolved
    if _looks_like_path(model):
        raise ModelLoadError(f"model directory {path} does not exist")
    packaged = packaged_dir(model)
    # The package ships the same weights as the hub: use them, no network round trip.
    return model, str(packaged) if packaged is not None else model


def _load_backend(model: str, source: str, layer: str | None, device: str, precision: str) -> Backend:
    kw: dict[str, Any] = dict(
        model_id=model, name=space_name_for(model, layer), layer=layer, device=device, precision=precision
    )
    if model.lower() == EFFICIENTNET_LITE0:
        backend: Backend = load_efficientnet(**kw)
    else:
        backend = load_hf(source, **kw)
    backend.probe()
    return backend


def _side(backend: Backend, modality: str) -> Literal["image", "text"]:
    if modality == "auto":
        return "image" if backend.has_images else "text"
    if modality == "image" and not backend.has_images:
        raise ModelLoadError(f"{backend.model_id} is a text encoder: it cannot embed images (use modality 'text')")
    if modality == "text" and not backend.has_texts:
        raise ModelLoadError(f"{backend.model_id} is an image model: it cannot embed texts (use modality 'image')")
    return "image" if modality == "image" else "text"


def load_embedder(
    model: str,
    modality: Literal["image", "text", "auto"] = "auto",
    *,
    device: str = "auto",
    batch_size: int = 32,
    layer: str | None = None,
    precision: runtime.Precision = "fp32",
) -> ModelEmbedder:
    """An embedder for `model`: a hub id, a local save_pretrained directory, or "efficientnet-lite0".

    CLIP-like models embed images and texts into one space (text_side=True); vision backbones
    give pooler_output (or layer="hidden:<i>": that hidden state averaged over space / tokens,
    capped at 10,000 dims); text encoders give the attention-masked mean of token states.
    modality "auto" picks images when the model has an image side. device "auto": cuda > mps
    > cpu. precision "int8" (opt-in, CPU only): dynamic int8 Linear layers, ~2.5x faster on a
    ViT-B/32 but NOT accurate on every model: cosine to fp32 was 0.9995 on random CLIP weights
    yet only ~0.88 on real all-MiniLM-L6-v2 (benchmarks/ingest.py), and vectors then depend
    slightly on the other images in the batch. Models are loaded once per (model, layer, device, precision)
    per process. Raises ModelLoadError (with instructions) when the model cannot be loaded.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    model = model.strip()
    if not model:
        raise ModelLoadError("no model given: pass a hub name (e.g. openai/clip-vit-base-patch32) or a local directory")
    layer = None if parse_layer(layer) is None else layer.strip() if layer else None
    dev = runtime.resolve_device(device)
    runtime.check_precision(precision, dev)
    model_id, source = _resolve(model)
    key = (model_id, layer, dev, precision)
    with _LOAD_LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            runtime.configure_threads()
            start = time.perf_counter()
            backend = _load_backend(model_id, source, layer, dev, precision)
            _BACKENDS[key] = backend
            logger.info("loaded %s from %s: %d-d on %s (%s) in %.1f s",
                        model_id, source, backend.dim, dev, precision, time.perf_counter() - start)
    return ModelEmbedder(backend, _side(backend, modality), batch_size)


def embedder_for_space(
    space: SpaceInfo, *, device: str = "auto", batch_size: int = 32, precision: runtime.Precision = "fp32"
) -> ModelEmbedder:
    """Reload the model that made `space` (same model, layer and modality); checks the size.

    Raises UnsupportedOperationError for uploaded vectors (modality "vector": no model),
    DimensionMismatchError when the model now gives vectors of another size.
    """
    if space.modality == "vector" or not space.model:
        raise UnsupportedOperationError(
            f"space {space.name!r} holds uploaded vectors: no model can embed new images or texts into it"
        )
    embedder = load_embedder(
        space.model, space.modality, device=device, batch_size=batch_size, layer=space.layer, precision=precision
    )
    if embedder.dim != space.dim:
        raise DimensionMismatchError(
            f"space {space.name!r} stores {space.dim}-d vectors but {space.model} now gives {embedder.dim}-d"
        )
    return embedder


def clear_cache() -> None:
    """Forget every loaded model (frees their memory once no embedder refers to them)."""
    with _LOAD_LOCK:
        _BACKENDS.clear()
