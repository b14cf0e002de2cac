"""Turn images and texts into vectors: Hugging Face models and offline packaged weights (torch loads lazily)."""

from core.embedders.base import Embedder, PreprocessingEmbedder
from core.embedders.embedder import ModelEmbedder
from core.embedders.loader import clear_cache, embedder_for_space, load_embedder
from core.embedders.naming import (
    EFFICIENTNET_LITE0,
    PRESETS,
    available_offline_models,
    how_to_provide,
    parse_layer,
    space_name_for,
)
from core.embedders.pooling import MAX_HIDDEN_DIM
from core.embedders.runtime import configure_threads

__all__ = [
    "EFFICIENTNET_LITE0",
    "MAX_HIDDEN_DIM",
    "PRESETS",
    "Embedder",
    "ModelEmbedder",
    "PreprocessingEmbedder",
    "available_offline_models",
    "clear_cache",
    "configure_threads",
    "embedder_for_space",
    "how_to_provide",
    "load_embedder",
    "parse_layer",
    "space_name_for",
]
