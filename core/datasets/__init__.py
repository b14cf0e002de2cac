"""Readers that turn user data (image folders, manifests, own vectors) into Items, and safe image loading."""

from core.datasets.folder import from_image_folder
from core.datasets.images import IMAGE_EXTENSIONS, check_allowed, load_image, open_image, to_rgb
from core.datasets.manifest import from_manifest, require_reachable
from core.datasets.own_embeddings import OwnVectors, load_own_embeddings, open_own_embeddings

__all__ = [
    "IMAGE_EXTENSIONS",
    "OwnVectors",
    "check_allowed",
    "from_image_folder",
    "from_manifest",
    "load_image",
    "load_own_embeddings",
    "open_image",
    "open_own_embeddings",
    "require_reachable",
    "to_rgb",
]
