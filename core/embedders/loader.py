"""load_embedder / embedder_for_space: resolve a model name, load it once per process, wrap it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from core.embedders import runtime
from core.embedders.backend import Backend
from core.embedders.efficientnet import load_efficientnet
from core.embedders.embedder import ModelEmbedder
from core.embedders.hf import load_hf
from core.embedders.naming import EFFICIENTNET_LITE0, packaged_dir, parse_layer, space_name_for
from core.errors import BadInputError, DimensionMismatchError, ModelLoadError, UnsupportedOperationError
from core.types import SpaceInfo

logger = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("image", "text", "auto")
# Weights transformers reads without unpickling, and the pickled kinds refused by default.
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
SAFE_WEIGHTS_SUFFIXES = (".safetensors", ".safetensors.index.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

# (model id, layer, device, precision) -> loaded backend. Loading is serialised by one lock:
# two dashboard sessions asking for the same model must not load it twice.
_BACKENDS: dict[tuple[str, str | None, str, str], Backend] = {}
_LOAD_LOCK = threading.Lock()


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or "\\" in model or model.count("/") > 1


def _resolve(model: str, allowed_roots: Sequence[Path] | None, allow_pickled: bool) -> tuple[str, str]:
    """(model id to record, source to load from): an absolute local dir, a packaged dir, or a hub id.

    Any name that is an existing folder is a local model, whichever field it was typed in: it must
    lie under allowed_roots when they are given, and hold safetensors weights (check_local_model).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        resolved = check_local_model(path, allowed_roots, allow_pickled)
        return str(resolved), str(resolved)
    if _looks_like_path(model):
        raise ModelLoadError(f"model directory {path} does not exist")
    packaged = packaged_dir(model)
    # The package ships the same weights as the hub: use them, no network round trip.
    return model, str(packaged) if packaged is not None else model


def check_local_model(path: Path, allowed_roots: Sequence[Path] | None = None,
                      allow_pickled: bool = False) -> Path:
    """The resolved folder of a local model, checked: under one of allowed_roots (None: anywhere,
    e.g. a folder the CLI user named), with a config.json, and with safetensors weights unless
    allow_pickled (settings.allow_pickled_models): pickled weights (pytorch_model.bin, *.pt,
    *.pkl) can run code when loaded. BadInputError outside the roots, ModelLoadError otherwise."""
    resolved = path.resolve()
    if allowed_roots is not None:
        roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        if not any(resolved.is_relative_to(root) for root in roots):
            raise BadInputError(
                f"model folder {path} is outside the data roots "
                f"({', '.join(str(r) for r in roots) or 'none'}); set EMBEDSCOPE_DATA_ROOTS to allow it")
    if not (resolved / "config.json").is_file():
        raise ModelLoadError(
            f"{path} has no config.json, so it is not a saved Hugging Face model "
            "(create one with model.save_pretrained(dir) and processor.save_pretrained(dir))"
        )
    pickles = pickled_only(resolved)
    if pickles and not allow_pickled:
        raise ModelLoadError(
            f"{path} holds only pickled weights ({', '.join(pickles[:3])}), and loading a pickle can "
            "run code: save the model as safetensors (model.save_pretrained(dir) writes "
            "model.safetensors), or set EMBEDSCOPE_ALLOW_PICKLED_MODELS=1 if you trust this folder"
        )
    return resolved


def pickled_only(folder: Path) -> list[str]:
    """Names of the pickled weight files of a model folder that has no safetensors weights
    (the files transformers would unpickle); [] when safetensors are there or nothing is."""
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        explicit = _explicit_weights(folder)
        return [explicit] if explicit and not explicit.endswith(SAFE_WEIGHTS_SUFFIXES) else []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def _explicit_weights(folder: Path) -> str | None:
    """config.json's `transformers_weights` (a weights file name transformers loads instead)."""
    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("transformers_weights")
    except (OSError, ValueError, AttributeError):
        return None  # transformers reports an unreadable config itself
    return str(value) if value else None


def _load_backend(model: str, source: str, layer: str | None, device: str, precision: str,
                  safetensors_only: bool) -> Backend:
    kw: dict[str, Any] = dict(
        model_id=model, name=space_name_for(model, layer), layer=layer, device=device, precision=precision
    )
    if model.lower() == EFFICIENTNET_LITE0:
        backend: Backend = load_efficientnet(**kw)
    else:
        backend = load_hf(source, safetensors_only=safetensors_only, **kw)
    backend.probe()
    return backend


def side(backend: Backend, modality: str) -> Literal["image", "text"]:
    """The side ("image" / "text") an embedder of `backend` embeds for `modality` ("auto": images first)."""
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
    allowed_roots: Sequence[Path] | None = None,
    allow_pickled: bool = False,
) -> ModelEmbedder:
    """An embedder for `model`: a hub id, a local save_pretrained directory, or "efficientnet-lite0".

    CLIP-like models embed images and texts into one space (text_side=True); vision backbones
    give pooler_output (or layer="hidden:<i>": that hidden state averaged over space / tokens,
    capped at 10,000 dims); text encoders give the attention-masked mean of token states.
    modality "auto" picks images when the model has an image side. device "auto": cuda > mps
    > cpu. precision "int8" (opt-in, CPU only): dynamic int8 Linear layers, ~2.5x faster on a
    ViT-B/32 but NOT accurate on every model: cosine to fp32 was 0.9995 on random CLIP weights
    yet only ~0.88 on real all-MiniLM-L6-v2 (benchmarks/ingest.py), and vectors then depend
    slightly on the other images in the batch. Models are loaded once per (model, device, precision)
    per process (other layers are views of the loaded model). Raises ModelLoadError (with instructions) when the model cannot be loaded.

    A model name that is an existing folder (typed in any field) must lie under allowed_roots
    when they are given (the dashboard passes settings.allowed_roots; BadInputError otherwise),
    and must hold safetensors weights unless allow_pickled (settings.allow_pickled_models).
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    backend = load_backend(model, layer, device=device, precision=precision, allowed_roots=allowed_roots,
                           allow_pickled=allow_pickled)
    return ModelEmbedder(backend, side(backend, modality), batch_size)


def load_backend(model: str, layer: str | None, *, device: str = "auto", precision: runtime.Precision = "fp32",
                 allowed_roots: Sequence[Path] | None = None, allow_pickled: bool = False) -> Backend:
    """The shared Backend of (model, layer) on the device (see load_embedder for the arguments).

    Another layer of a model already loaded is a view of it (Backend.for_layer): one copy of
    the weights in memory however many layers are embedded."""
    model = model.strip()
    if not model:
        raise ModelLoadError("no model given: pass a hub name (e.g. openai/clip-vit-base-patch32) or a local directory")
    layer = None if parse_layer(layer) is None else layer.strip() if layer else None
    dev = runtime.resolve_device(device)
    runtime.check_precision(precision, dev)
    model_id, source = _resolve(model, allowed_roots, allow_pickled)
    safetensors_only = Path(source).is_dir() and not allow_pickled
    key = (model_id, layer, dev, precision)
    with _LOAD_LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            loaded = next((b for (m, _, d, p), b in _BACKENDS.items() if (m, d, p) == (model_id, dev, precision)),
                          None)
            if loaded is not None:
                backend = loaded.for_layer(layer)
            else:
                runtime.configure_threads()
                start = time.perf_counter()
                backend = _load_backend(model_id, source, layer, dev, precision, safetensors_only)
                logger.info("loaded %s from %s: %d-d on %s (%s) in %.1f s",
                            model_id, source, backend.dim, dev, precision, time.perf_counter() - start)
            _BACKENDS[key] = backend
    return backend


def embedder_for_space(
    space: SpaceInfo, *, device: str = "auto", batch_size: int = 32, precision: runtime.Precision = "fp32",
    allow_pickled: bool = False,
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
        space.model, space.modality, device=device, batch_size=batch_size, layer=space.layer, precision=precision,
        allow_pickled=allow_pickled,
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
