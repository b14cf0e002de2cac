"""A store seeded with hostile strings (Markdown, HTML, LaTeX, Streamlit directives, formula cells,
a 5,000-character label, an unservable uri) for the inert-text tests of the app and browser tiers.

Every string a user controls carries one: labels, predictions, split values, metadata keys and
values, item keys, dataset / project / space names (within what core.store.names allows), a
collection's description. `seed_hostile(settings)` writes it, with an analysis, the UMAP map and
a collection, so every page has something to render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.config import Settings
from core.ids import point_id
from core.types import SpaceInfo
from tests.actors import ADMIN

# Valid names (letters, digits, '-', '_', '.', inner spaces) that still mean Markdown: __bold__.
PROJECT = "__proj__"
SPACE = "__space__"
DATASET = "__ds__"

EVIL = "evil.test"  # no request may ever go to this host
LONG_LABEL = "L" * 5_000
# One class per hostile label; each should show as exactly this text.
LABELS = (
    f"![img](http://{EVIL}/label.png)",
    "[click](javascript:alert(1))",
    "<b style='color:red'>html</b>",
    "**bold** _it_",
    "$x^2$",
    ":red[colour]",
    f"<img src=http://{EVIL}/tag.png>",
    f"www.{EVIL}",
    "=HYPERLINK(\"http://evil.test\",\"x\")",
    LONG_LABEL,
)
# Predictions: the next class's label for the first two classes (clusters of model errors, whose
# "top confusion" pairs two hostile labels), the label itself for the others.
SPLITS = ("$$split$$", f"![s](http://{EVIL}/split.png)")
META_KEY = "**mkey**"
META_VALUES = ("$m$", ":blue[meta]", f"[m](http://{EVIL}/m)")
COLLECTION = "__coll__"
DESCRIPTION = f"![d](http://{EVIL}/desc.png) **desc** $d$"
BAD_URIS = ("/tmp/" + "n" * 300 + ".png", "/tmp/bad\x00name.png")
# Literal texts a page must show as typed (each also proves its Markdown did not render).
LITERALS = ("**bold** _it_", "$x^2$", ":red[colour]", "[click](javascript:alert(1))")
PER_CLASS = 6
THUMB = 16


@dataclass
class HostileSeed:
    """What seed_hostile wrote."""

    ids: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def _image(cls: int, rng: np.random.Generator) -> Image.Image:
    base = np.zeros((THUMB, THUMB), dtype=np.float32)
    row, col = divmod(cls, 4)
    base[row * 4:(row + 1) * 4, col * 4:(col + 1) * 4] = 230.0
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, mode="L").convert("RGB")


def _payload(i: int, cls: int, uri: str) -> dict[str, object]:
    label = LABELS[cls]
    prediction = LABELS[(cls + 1) % len(LABELS)] if cls < 2 else label
    return {"dataset": DATASET, "key": f"[k{i}](http://{EVIL}/k{i}) **{i}**.png", "uri": uri,
            "text": None, "label": label, "prediction": prediction,
            "confidence": round(0.5 + (i % 5) / 10, 2), "split": SPLITS[i % 2],
            "meta": {META_KEY: META_VALUES[i % len(META_VALUES)]}, "kind": "item"}


def seed_hostile(settings: Settings, *, with_map: bool = True) -> HostileSeed:
    """Write the hostile project (images under settings.demo_dir), its analysis and a collection
    with a hostile description; with_map also the UMAP map of the dataset (the slow part)."""
    from core import collections
    from core.store import open_store

    rng = np.random.default_rng(0)
    folder = settings.demo_dir / "hostile"
    folder.mkdir(parents=True, exist_ok=True)
    seed = HostileSeed()
    vectors, payloads = [], []
    for i in range(PER_CLASS * len(LABELS)):
        cls = i % len(LABELS)
        image = _image(cls, rng)
        path = folder / f"{i:03d}.png"
        image.save(path)
        uri = BAD_URIS[i % 2] if i < 2 else str(path)  # two items whose uri cannot be served
        payloads.append(_payload(i, cls, uri))
        pid = point_id(PROJECT, DATASET, str(payloads[-1]["key"]))
        seed.ids.append(pid)
        seed.labels[pid] = LABELS[cls]
        vec = np.asarray(image.convert("L"), dtype=np.float32).ravel() + 1.0
        vectors.append(vec / np.linalg.norm(vec))
    store = open_store(settings)
    try:
        store.ensure_space(PROJECT, SpaceInfo(SPACE, THUMB * THUMB, "vector",
                                              description="hostile strings (test seed)"))
        store.upsert(PROJECT, SPACE, seed.ids, np.stack(vectors).astype(np.float32), payloads)
        from core.pipeline.analyse import run_analysis

        run_analysis(store, PROJECT, SPACE, [DATASET], actor=ADMIN)
        collections.save(store, PROJECT, COLLECTION, seed.ids[:12], space=SPACE,
                         description=DESCRIPTION, query={"type": "text", "text": LABELS[3]}, actor=ADMIN)
        if with_map:
            from core.pipeline.maps import get_map

            get_map(store, PROJECT, SPACE, [DATASET], method="umap", actor=ADMIN)
    finally:
        store.close()
    return seed
