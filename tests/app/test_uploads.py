"""ui/uploads.py refuses unsafe zips and folders, and writes nothing outside the uploads dir."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.errors import BadInputError
from core.store.names import decode, validate_name
from ui import uploads


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", data_roots=(tmp_path / "datasets",))


def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None,
         compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()} if root.exists() else set()


def _outside_data(tmp_path: Path, settings: Settings) -> set[Path]:
    return {p for p in _files_under(tmp_path) if not p.is_relative_to(settings.data_dir)}


def test_good_zip_unpacks_nested_folders_and_skips_junk(settings: Settings) -> None:
    data = _zip({"cats/a.png": b"a", "dogs/sub/b.png": b"bb", "__MACOSX/cats/._a.png": b"x",
                 "cats/.DS_Store": b"x"})
    dest = uploads.upload_dir(settings, "pets")
    files = uploads.unpack_zip(io.BytesIO(data), dest, settings)
    assert sorted(p.relative_to(dest).as_posix() for p in files) == ["cats/a.png", "dogs/sub/b.png"]
    assert (dest / "dogs/sub/b.png").read_bytes() == b"bb"
    # The staging folder is gone: only the dataset folder remains in uploads/.
    assert [p.name for p in settings.uploads_dir.iterdir()] == ["pets"]


@pytest.mark.parametrize("bad", ["../../../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt",
                                 "C:/evil.txt", "..\\..\\evil.txt"])
def test_traversal_and_absolute_entries_are_refused(bad: str, settings: Settings,
                                                    tmp_path: Path) -> None:
    data = _zip({"fine.png": b"ok", bad: b"evil"})
    dest = uploads.upload_dir(settings, "ds")
    with pytest.raises(BadInputError) as info:
        uploads.unpack_zip(io.BytesIO(data), dest, settings)
    assert "evil.txt" in str(info.value)  # the message names the entry
    assert _files_under(settings.uploads_dir) == set()  # nothing written, not even fine.png
    assert _outside_data(tmp_path, settings) == set()
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"evil"


def test_symlink_entry_is_refused(settings: Settings, tmp_path: Path) -> None:
    data = _zip({"a.png": b"a"}, symlinks={"link.png": "/etc/passwd"})
    with pytest.raises(BadInputError, match="link.png.*symbolic link"):
        uploads.unpack_zip(io.BytesIO(data), uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()
    assert _outside_data(tmp_path, settings) == set()


def test_total_size_over_the_limit_is_refused(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", max_upload_mb=1)
    blobs = {f"img{i}.bin": os.urandom(400_000) for i in range(3)}  # 1.2 MB, incompressible
    with pytest.raises(BadInputError, match="more than 1 MB.*img2.bin"):
        uploads.unpack_zip(io.BytesIO(_zip(blobs)), uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()


def test_too_many_files_are_refused(settings: Settings) -> None:
    data = _zip({f"{i}.png": b"x" for i in range(6)})
    with pytest.raises(BadInputError, match="more than 5 files"):
        uploads.unpack_zip(io.BytesIO(data), uploads.upload_dir(settings, "ds"), settings,
                           max_files=5)
    assert _files_under(settings.uploads_dir) == set()


def test_zip_bomb_ratio_is_refused(settings: Settings) -> None:
    data = _zip({"bomb.png": b"\0" * (20 * 1024 * 1024)})  # 20 MB of zeros -> ~20 kB
    assert len(data) < 100_000
    with pytest.raises(BadInputError, match="bomb.png.*zip bomb"):
        uploads.unpack_zip(io.BytesIO(data), uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()


def test_entry_lying_about_its_size_is_stopped(settings: Settings) -> None:
    data = bytearray(_zip({"a.bin": b"y" * 5000}, compression=zipfile.ZIP_STORED))
    # Shrink the declared size in both headers to 10 bytes: the extractor must count real bytes.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = bytes(data).find(sig)
        data[pos + offset:pos + offset + 4] = (10).to_bytes(4, "little")
    with pytest.raises(BadInputError):
        uploads.unpack_zip(io.BytesIO(bytes(data)), uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()


def test_not_a_zip_is_a_message(settings: Settings) -> None:
    with pytest.raises(BadInputError, match="Not a readable zip"):
        uploads.unpack_zip(io.BytesIO(b"not a zip"), uploads.upload_dir(settings, "ds"), settings)


def test_destination_outside_uploads_is_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="uploads go under"):
        uploads.unpack_zip(io.BytesIO(_zip({"a.png": b"a"})), tmp_path / "elsewhere", settings)
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "", "x" * 101, "a\x00b", " lead", "a\nb"])
def test_bad_dataset_names_are_refused(name: str, settings: Settings) -> None:
    with pytest.raises(BadInputError):
        uploads.upload_dir(settings, name)
    with pytest.raises(BadInputError):  # the one name rule of the project, not a second one
        validate_name(name)


@pytest.mark.parametrize("name", [".hidden", "-x", "a b", "a_b", "a.b", "café", "A B_c-d.e"])
def test_every_valid_dataset_name_gets_its_own_plain_folder(name: str, settings: Settings) -> None:
    folder = uploads.upload_dir(settings, name)
    assert folder.parent == settings.uploads_dir
    assert re.fullmatch(r"[A-Za-z0-9_-]+", folder.name)  # no dot file, no space, no unicode
    assert decode(folder.name) == name  # reversible: one folder per name


@pytest.mark.parametrize("name", ["../evil.png", "..", ".bashrc", "dir/evil.png", ""])
def test_save_file_refuses_path_names(name: str, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        uploads.save_file(name, b"x", uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()
    assert _outside_data(tmp_path, settings) == set()


def test_names_that_differ_only_by_space_or_underscore_do_not_share_a_folder(
        settings: Settings) -> None:
    folders = {uploads.upload_dir(settings, n) for n in ("a b", "a_b", "a-b", "a.b", "a  b")}
    assert len(folders) == 5


def test_save_file_writes_inside_the_dataset_folder(settings: Settings) -> None:
    dest = uploads.upload_dir(settings, "ds")
    assert uploads.save_file("cat.png", b"png", dest, settings) == (dest / "cat.png").resolve()


def test_folders_outside_the_data_roots_are_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "datasets" / "pets").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    assert uploads.resolve_data_folder("pets", settings) == (tmp_path / "datasets/pets").resolve()
    assert uploads.resolve_data_folder(str(tmp_path / "datasets" / "pets"), settings).is_dir()
    for bad in ("/etc", str(tmp_path / "private"), "../private", "pets/../../../private"):
        with pytest.raises(BadInputError, match="outside the data roots"):
            uploads.resolve_data_folder(bad, settings)
    with pytest.raises(BadInputError, match="does not exist"):
        uploads.resolve_data_folder("missing", settings)


def test_symlinked_folder_escaping_the_roots_is_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "datasets").mkdir()
    (tmp_path / "private").mkdir()
    (tmp_path / "datasets" / "sneaky").symlink_to(tmp_path / "private")
    with pytest.raises(BadInputError, match="outside the data roots"):
        uploads.resolve_data_folder("sneaky", settings)


def test_uploading_the_same_file_again_reuses_it(settings: Settings) -> None:
    dest = uploads.upload_dir(settings, "ds")
    first = uploads.save_file("cat.png", b"png-1", dest, settings)
    again = uploads.save_file("cat.png", b"png-1", dest, settings)
    assert again == first and sorted(p.name for p in dest.iterdir()) == ["cat.png"]


def test_a_different_file_under_an_existing_name_is_kept_not_overwritten(settings: Settings) -> None:
    dest = uploads.upload_dir(settings, "ds")
    first = uploads.save_file("cat.png", b"old", dest, settings)
    second = uploads.save_file("cat.png", b"new", dest, settings)
    assert first.read_bytes() == b"old"  # never overwritten silently
    assert second.name == "cat-2.png" and second.read_bytes() == b"new"
    # Either content uploaded once more is recognised, wherever it was kept.
    assert uploads.save_file("cat.png", b"new", dest, settings) == second
    assert uploads.save_file("cat.png", b"newer", dest, settings).name == "cat-3.png"


def test_zip_uploaded_again_reuses_same_files_and_keeps_changed_ones(settings: Settings) -> None:
    dest = uploads.upload_dir(settings, "ds")
    uploads.unpack_zip(io.BytesIO(_zip({"cats/a.png": b"a", "cats/b.png": b"b"})), dest, settings)
    files = uploads.unpack_zip(io.BytesIO(_zip({"cats/a.png": b"a", "cats/b.png": b"B!"})), dest,
                               settings)
    assert sorted(p.relative_to(dest).as_posix() for p in files) == ["cats/a.png", "cats/b-2.png"]
    assert (dest / "cats/b.png").read_bytes() == b"b" and (dest / "cats/b-2.png").read_bytes() == b"B!"
    assert sorted(p.name for p in (dest / "cats").iterdir()) == ["a.png", "b-2.png", "b.png"]


def test_an_upload_folder_has_a_total_quota(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", max_upload_mb=1)
    dest = uploads.upload_dir(settings, "ds")
    chunk = 1_000_000  # under the 1 MiB per-upload limit; FOLDER_QUOTA_UPLOADS of them fill the folder
    for i in range(uploads.FOLDER_QUOTA_UPLOADS):
        uploads.unpack_zip(io.BytesIO(_zip({f"{i}.bin": os.urandom(chunk)})), dest, settings)
    with pytest.raises(BadInputError, match="quota"):
        uploads.save_file("more.bin", os.urandom(chunk), dest, settings)
    with pytest.raises(BadInputError, match="quota"):
        uploads.unpack_zip(io.BytesIO(_zip({"more.bin": os.urandom(chunk)})), dest, settings)
    used = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert used <= uploads.folder_quota(settings)
    # Another dataset's folder has its own quota.
    uploads.save_file("x.bin", os.urandom(chunk), uploads.upload_dir(settings, "other"), settings)


def test_the_quota_counts_real_bytes_not_the_zip_header(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", max_upload_mb=1)
    data = bytearray(_zip({"a.bin": os.urandom(1_500_000)}, compression=zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # declare 10 bytes
        pos = bytes(data).find(sig)
        data[pos + offset:pos + offset + 4] = (10).to_bytes(4, "little")
    with pytest.raises(BadInputError, match="a.bin"):
        uploads.unpack_zip(io.BytesIO(bytes(data)), uploads.upload_dir(settings, "ds"), settings)
    assert _files_under(settings.uploads_dir) == set()


def _corrupt_deflate_zip() -> bytes:
    data = bytearray(_zip({"cats/a.png": os.urandom(50_000)}))
    start = bytes(data).find(b"PK\x03\x04") + 30 + len("cats/a.png")
    data[start + 100:start + 400] = b"\xff" * 300  # garble the deflate stream
    return bytes(data)


@pytest.mark.parametrize("make, entry", [
    (_corrupt_deflate_zip, "cats/a.png"),
    (lambda: _zip({"x" * 300 + ".png": b"long name"}), "x" * 300 + ".png"),
    (lambda: _zip({"a.png": b"1", "a.png/b.png": b"2"}), "a.png/b.png"),
])
def test_zip_errors_name_the_entry_never_the_server_folder(make: Any, entry: str,
                                                           settings: Settings) -> None:
    with pytest.raises(BadInputError) as info:
        uploads.unpack_zip(io.BytesIO(make()), uploads.upload_dir(settings, "ds"), settings)
    message = str(info.value)
    assert entry in message
    assert str(settings.data_dir) not in message and ".unpack-" not in message
    assert _files_under(settings.uploads_dir) == set()
