"""ui/images.py serves only files under the data roots (cached thumbnails); ui/html.py escapes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from core.config import Settings, load_settings
from ui import html, images


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", data_roots=(tmp_path / "root",))


def _png(path: Path, size: tuple[int, int] = (300, 200), color: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def test_thumbnail_of_an_allowed_image_is_cached_on_disk(settings: Settings, tmp_path: Path) -> None:
    path = _png(tmp_path / "root" / "a.png")
    data = images.thumbnail(str(path), 64, settings)
    assert data is not None
    with Image.open(io.BytesIO(data)) as thumb:
        assert max(thumb.size) == 64 and thumb.format == "JPEG"
    cached = list((settings.cache_dir / "thumbs").rglob("*.jpg"))
    assert len(cached) == 1
    assert images.thumbnail(f"file://{path}", 64, settings) == data  # same file, served from cache
    assert len(list((settings.cache_dir / "thumbs").rglob("*.jpg"))) == 1
    # An edited image gets a new thumbnail (the key holds mtime and size).
    _png(path, color="blue")
    os.utime(path, ns=(1, 1))
    assert images.thumbnail(str(path), 64, settings) != data


def test_demo_and_upload_dirs_are_allowed(settings: Settings) -> None:
    for root in (settings.demo_dir, settings.uploads_dir):
        assert images.thumbnail(str(_png(root / "x" / "b.png")), 32, settings) is not None


@pytest.mark.parametrize("make_uri", [
    lambda root, tmp: f"{root}/../../etc/passwd",
    lambda root, tmp: "/etc/passwd",
    lambda root, tmp: f"file://{root}/../outside.png",
    lambda root, tmp: f"{tmp}/outside.png",
    lambda root, tmp: "http://example.com/cat.png",
    lambda root, tmp: f"{root}/link.png",  # a symlink inside the root pointing outside
    lambda root, tmp: f"{root}/missing.png",
    lambda root, tmp: "",
])
def test_paths_outside_the_roots_return_none(make_uri, settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "root"
    _png(tmp_path / "outside.png")
    _png(root / "inside.png")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    uri = make_uri(root, tmp_path)
    assert images.thumbnail(uri, 32, settings) is None
    assert images.open_image(uri, settings) is None
    assert images.data_uri(uri, 32, settings) is None
    assert not (settings.cache_dir / "thumbs").exists()


def test_broken_and_oversized_images_return_none(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", data_roots=(tmp_path / "root",),
                             max_image_pixels=100 * 100)
    broken = tmp_path / "root" / "broken.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a png")
    assert images.thumbnail(str(broken), 32, settings) is None
    big = _png(tmp_path / "root" / "big.png", size=(200, 200))
    assert images.open_image(str(big), settings) is None
    assert images.thumbnail(str(_png(tmp_path / "root" / "ok.png", (50, 50))), 32, settings)


@pytest.mark.parametrize("make_uri", [
    lambda root: str(root / ("n" * 300 + ".png")),  # a path component over 255 bytes
    lambda root: str(root / "x" / ("d" * 256) / "a.png"),
    lambda root: str(root / "bad\x00name.png"),  # a NUL byte
    lambda root: "file://" + str(root / "bad%00name.png"),
    lambda root: str(root / "lone\ud800surrogate.png"),
    lambda root: "http://[broken-ipv6/x.png",
])
def test_unservable_uris_are_none_never_an_error(make_uri, settings: Settings, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    uri = make_uri(tmp_path / "root")
    for _ in range(3):  # every rerun and hover asks again
        assert images.safe_path(uri, settings) is None
        assert images.thumbnail(uri, 32, settings) is None
        assert images.open_image(uri, settings) is None
        assert images.data_uri(uri, 32, settings) is None
    warnings = [r for r in caplog.records if r.name == "ui.images" and r.levelname == "WARNING"]
    assert len(warnings) <= 1  # logged once, not once per viewer and rerun
    assert all(len(r.getMessage()) < 600 for r in warnings)  # and shortened


def test_data_uri_embeds_a_jpeg(settings: Settings, tmp_path: Path) -> None:
    uri = images.data_uri(str(_png(tmp_path / "root" / "c.png")), 32, settings)
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")


def test_html_helpers_escape_user_strings() -> None:
    evil = '<script>alert("x")</script>'
    assert "<script>" not in html.esc(evil) and html.esc(None) == ""
    assert html.esc('a"b') == "a&quot;b"  # safe inside a quoted attribute too
