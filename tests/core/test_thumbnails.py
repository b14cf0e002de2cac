"""The thumbnail cache: made at ingest (in the prepare workers), read first by the UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core import thumbnails
from core.config import Settings
from core.datasets import from_image_folder
from core.pipeline.ingest import ingest_items
from core.store.base import VectorStore
from tests.actors import ADMIN
from tests.core.test_datasets import make_image_folder
from tests.core.test_ingest import CountingEmbedder
from ui import images


def test_ingest_writes_the_thumbnails_the_map_reads(store: VectorStore, settings: Settings,  # noqa: F811
                                                    clip: CountingEmbedder, tmp_path: Path,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data" / "shapes"
    make_image_folder(folder, {"circle": 3, "square": 2})
    items = from_image_folder(folder, settings)
    ingest_items(store, "p", "train", items, clip, settings=settings, batch_size=2, actor=ADMIN)
    made = sorted((settings.cache_dir / "thumbs").rglob("*.jpg"))
    assert len(made) == 5
    for item in items:
        path = Path(item.uri).resolve()
        target = thumbnails.thumb_file(settings.cache_dir, path, thumbnails.INGEST_SIZE)
        assert target in made
        with Image.open(target) as thumb:
            assert max(thumb.size) <= thumbnails.INGEST_SIZE
    # The UI reads the ingest thumbnail without decoding the original again.
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("decoded the original"))
    data = images.thumbnail(items[0].uri, thumbnails.INGEST_SIZE, settings)
    assert data == thumbnails.thumb_file(settings.cache_dir, Path(items[0].uri).resolve(),
                                         thumbnails.INGEST_SIZE).read_bytes()
    # Bad uris are skipped, never raised.
    assert thumbnails.make_thumbnails([None, "/nowhere/x.png", "http://x/y.png"], settings) == 0
