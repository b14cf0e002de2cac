"""Real labelled data sets that ship in installed packages, each in several embedding spaces.

    spaces(effnet=True) -> [Space(dataset, space, vectors (n, d) float32 unit rows, labels (n,) int,
                                  model_probs (n, C) or None), ...]

digits (sklearn, 1,797 8x8 images, 10 classes): raw pixels, HOG of the digits upscaled and shifted by up
to 3 px (shifted_digits), the demo's MLP hidden layer (trained on
the other half; its predictions come along), EfficientNet-Lite0. lfw_subset (skimage, 200 25x25
crops, faces vs non-faces): pixels, HOG, EfficientNet-Lite0. textiles (conformal-clip-data, a
seeded 600 of 2,000 250x250 simulated fabric images: nominal / local defect / global defect):
pixels (32x32 grey), HOG, EfficientNet-Lite0. breast_cancer and wine (sklearn, tabular):
standardised features, their top principal components; iris (150, 3 classes): standardised. EfficientNet-Lite0 embeddings are cached
under ~/.cache/embedscope-bench (about 1 min on 2 cores the first time); a data set whose package
is missing is skipped with a message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path.home() / ".cache" / "embedscope-bench"
TEXTILE_SAMPLE = 600


@dataclass
class Space:
    dataset: str
    space: str
    vectors: np.ndarray
    labels: np.ndarray
    model_probs: np.ndarray | None = None


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centred(x: np.ndarray) -> np.ndarray:
    """Unit rows after removing the mean (cosine on raw non-negative pixels is dominated by it)."""
    return unit(x - x.mean(axis=0))


def effnet(name: str, images: Callable[[], list[Image.Image]]) -> np.ndarray | None:
    """EfficientNet-Lite0 embeddings of the images, cached on disk by name; None when unavailable."""
    path = CACHE / f"{name}-efficientnet-lite0.npy"
    if path.exists():
        return np.load(path)
    try:
        from core.embedders import load_embedder

        emb = load_embedder("efficientnet-lite0", "image", device="cpu")
    except Exception as e:  # noqa: BLE001 - optional space: say why and go on
        print(f"(EfficientNet-Lite0 skipped for {name}: {e})")
        return None
    vectors = emb.embed_images(images())
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def hog_features(images: np.ndarray, cell: int) -> np.ndarray:
    from skimage.feature import hog

    return np.stack([hog(im, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for im in images])


def shifted_digits(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each 8x8 digit upscaled to 32x32 and shifted by up to 3 px at random: a space where
    neighbours carry the labels better than a linear probe does (the probe is the sharper signal)."""
    from scipy.ndimage import shift, zoom

    rng = np.random.default_rng(seed)
    return np.stack([np.clip(shift(zoom(im / 16.0, 4, order=1), rng.uniform(-3, 3, 2), order=1), 0, 1)
                     for im in images])


def digits_spaces(use_effnet: bool) -> list[Space]:
    from sklearn.datasets import load_digits

    from core.demo_model import penultimate, train_mlp

    d = load_digits()
    x, y = d.data / 16.0, d.target.astype(int)
    out = [Space("digits", "pixels", centred(x), y),
           Space("digits", "hog-shifted", centred(unit(hog_features(shifted_digits(d.images), 4))), y)]
    perm = np.random.default_rng(0).permutation(y.size)
    a, b = perm[: y.size // 2], perm[y.size // 2:]
    clf = train_mlp(x[a].astype(np.float32), y[a], 0)
    probs = np.zeros((b.size, 10))
    probs[:, np.asarray(clf.classes_, dtype=int)] = clf.predict_proba(x[b])
    out.append(Space("digits", "mlp-hidden", unit(penultimate(clf, x[b].astype(np.float32)) + 1e-6),
                     y[b], probs))
    if use_effnet:
        pics = lambda: [Image.fromarray((im / 16 * 255).astype(np.uint8)).resize((96, 96)).convert("RGB")  # noqa: E731
                        for im in d.images]
        v = effnet("digits", pics)
        if v is not None:
            out.append(Space("digits", "efficientnet", unit(v), y))
    return out


def lfw_spaces(use_effnet: bool) -> list[Space]:
    from skimage.data import lfw_subset

    images = lfw_subset()  # (200, 25, 25) floats in [0, 1]: 100 faces, then 100 non-faces
    y = np.repeat([0, 1], 100)
    out = [Space("lfw_faces", "pixels", centred(images.reshape(200, -1)), y),
           Space("lfw_faces", "hog", centred(hog_features(images, 5)), y)]
    if use_effnet:
        v = effnet("lfw", lambda: [Image.fromarray((im * 255).astype(np.uint8)).resize((96, 96)).convert("RGB")
                                   for im in images])
        if v is not None:
            out.append(Space("lfw_faces", "efficientnet", unit(v), y))
    return out


def textile_spaces(use_effnet: bool) -> list[Space]:
    try:
        import conformal_clip_data as ccd
    except ImportError:
        print("(textiles skipped: pip install conformal-clip-data)")
        return []
    files, y = [], []
    for code, folder in enumerate((ccd.nominal_dir(), ccd.local_dir(), ccd.global_dir())):
        names = sorted(Path(folder).glob("*.jpg"))
        files += names
        y += [code] * len(names)
    pick = np.sort(np.random.default_rng(0).choice(len(files), TEXTILE_SAMPLE, replace=False))
    chosen = [files[i] for i in pick]
    labels = np.asarray(y)[pick]
    grey = np.stack([np.asarray(Image.open(f).convert("L").resize((64, 64)), dtype=np.float32) / 255
                     for f in chosen])
    small = np.stack([np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((32, 32)),
                                 dtype=np.float32) / 255 for g in grey])
    out = [Space("textiles", "pixels", centred(small.reshape(len(chosen), -1)), labels),
           Space("textiles", "hog", centred(hog_features(grey, 8)), labels)]
    if use_effnet:
        key = hashlib.sha1("".join(f.name for f in chosen).encode()).hexdigest()[:8]
        v = effnet(f"textiles-{key}", lambda: [Image.open(f).convert("RGB") for f in chosen])
        if v is not None:
            out.append(Space("textiles", "efficientnet", unit(v), labels))
    return out


def tabular_spaces() -> list[Space]:
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    out = []
    for name, loader, comps in (("breast_cancer", load_breast_cancer, 5), ("wine", load_wine, 5)):
        data = loader()
        z = StandardScaler().fit_transform(data.data)
        y = data.target.astype(int)
        out.append(Space(name, "standardised", unit(z), y))
        out.append(Space(name, f"pca{comps}", unit(PCA(comps, random_state=0).fit_transform(z)), y))
    iris = load_iris()
    out.append(Space("iris", "standardised", unit(StandardScaler().fit_transform(iris.data)), iris.target.astype(int)))
    return out


def spaces(use_effnet: bool = True) -> list[Space]:
    return [*digits_spaces(use_effnet), *lfw_spaces(use_effnet), *textile_spaces(use_effnet),
            *tabular_spaces()]
