"""The `embedscope` CLI end to end: ingest (folder, manifests, own vectors), resume after SIGKILL,
list, delete, --help, exit codes — real tiny models, the real embedded store."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.__main__ import COMMANDS, main
from core.config import load_settings
from core.filters import Condition, Filter
from core.ids import point_id
from core.store.base import VectorStore
from tests.core.test_datasets import (
    make_image_folder,
    write_manifest,
    write_png_header,
    write_random_png,
    write_truncated_jpeg,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def opened() -> Iterator[VectorStore]:
    """The store the CLI wrote to (EMBEDSCOPE_DATA_DIR from tests/conftest.py), opened after it ran."""
    from core.store import open_store

    store = open_store(load_settings())
    yield store
    store.close()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object, stdin: str | None = None,
            monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of main(argv)."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _space(store: VectorStore, project: str) -> str:
    (space,) = store.list_spaces(project)
    return space.name


# -- help and usage ---------------------------------------------------------------------------
def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "Exit codes" in out
    names = [c.replace("_", "-") for c in COMMANDS]  # module import_labels: command import-labels
    available = [c for c in names if f"    {c} " in out or f"    {c}\n" in out]
    assert available == names and {"ingest", "list", "delete", "compare", "models"} <= set(available)
    for command in available:
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: embedscope {command}"), command
        assert "--store" in out


@pytest.mark.parametrize("argv", [
    ["ingest", "--project", "p", "--dataset", "d"],  # no source
    ["ingest", "folder", "--manifest", "m.csv", "--project", "p", "--dataset", "d"],
    ["ingest", "folder", "--project", "p", "--dataset", "d", "--ids", "ids.txt"],
    ["ingest", "folder", "--project", "p"],  # argparse: --dataset missing
    ["delete", "--project", "p"],  # nothing to delete named
    ["no-such-command"],
    [],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "error" in err


def test_a_missing_command_module_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.__main__ as entry

    monkeypatch.setattr(entry, "COMMANDS", (*entry.COMMANDS, "no_such_command"))
    with pytest.raises(ModuleNotFoundError, match="core.cli.no_such_command"):
        entry.build_parser()


def test_ingest_help_says_which_models_work_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "ingest", "--help")
    text = " ".join(out.split())
    assert code == 0 and "Without internet use efficientnet-lite0" in text
    assert "sentence-transformers/all-MiniLM-L6-v2" in text and "`embedscope models` lists" in text


def test_default_model_without_internet_names_the_offline_choices(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_clip_dir: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    from core.embedders import available_offline_models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "pets"
    make_image_folder(folder, {"cat": 3})
    code, out, err = run_cli(capsys, "--log-level", "WARNING", "ingest", folder, "--project", "p", "--dataset", "d",
                             "--progress", "none")
    assert code == 1 and out == ""
    assert err.startswith("error: no internet (HF_HUB_OFFLINE=1), so openai/clip-vit-base-patch32 cannot be "
                          "downloaded: use --model ")
    assert "`embedscope models` lists them" in err and err.count("\n") == 1
    if "efficientnet-lite0" in available_offline_models():
        assert "efficientnet-lite0 (installed)" in err
    assert "all-MiniLM" not in err, "a text model is no choice for an image folder"
    # A model folder under a data root is named too (the CLI scans the roots it was given).
    code, _, err = run_cli(capsys, "--log-level", "WARNING", "ingest", folder, "--project", "p", "--dataset", "d",
                           "--progress", "none", "--data-root", tiny_clip_dir.parent)
    assert code == 1 and str(tiny_clip_dir.resolve()) in err
    assert run_cli(capsys, "list", "--json")[0] == 0
    assert json.loads(run_cli(capsys, "list", "--json")[1])["projects"] == [], "nothing stored, no empty space"


def test_python_dash_m_core_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "core", "list", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["projects"] == []


# -- image folder ingest ----------------------------------------------------------------------
def test_folder_ingest_with_rejects_then_rerun(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               tiny_clip_dir: Path, opened_after: None = None) -> None:  # noqa: F811
    folder = tmp_path / "shapes"
    keys = make_image_folder(folder, {"circle": 70, "square": 65, "noise": 65})
    write_truncated_jpeg(folder / "noise" / "truncated.jpg")
    write_random_png(folder / "square" / "random.png")
    argv = ["ingest", folder, "--project", "pets", "--dataset", "train", "--model", tiny_clip_dir,
            "--progress", "none"]

    code, out, err = run_cli(capsys, *argv)

    assert code == 3, err
    assert "202 items, 200 stored, 0 already stored, 2 rejected (partial)" in out
    assert "rejected noise/truncated.jpg:" in out and "rejected square/random.png:" in out
    rejects_file = Path(out.split("rejects file: ")[1].strip())
    assert set(pd.read_csv(rejects_file)["key"]) == {"noise/truncated.jpg", "square/random.png"}
    assert "Traceback" not in err

    code, out, _ = run_cli(capsys, *argv)
    assert code == 3 and "202 items, 0 stored, 200 already stored, 2 rejected" in out

    from core.store import open_store

    store = open_store(load_settings())
    try:
        space = _space(store, "pets")
        frame = store.payloads("pets", space, fields=["key", "label"])
        assert len(frame) == 200 and frame["key"].is_unique
        assert dict(zip(frame["key"], frame["label"], strict=True)) == {k: k.split("/")[0] for k in keys}
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_ingest_resumes_without_duplicates(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 tiny_clip_dir: Path) -> None:  # noqa: F811
    folder = tmp_path / "shapes"
    make_image_folder(folder, {"circle": 100, "square": 100})
    argv = ["ingest", str(folder), "--project", "p", "--dataset", "d", "--model", str(tiny_clip_dir),
            "--batch-size", "2", "--workers", "1", "--progress", "lines"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    seen = []
    for line in child.stderr:
        seen.append(line)
        if line.startswith("ingest: ") and int(line.split()[1].split("/")[0]) >= 10:
            child.send_signal(signal.SIGKILL)  # no cleanup, no flush: like a crash or an OOM kill
            break
    assert child.wait(timeout=60) == -signal.SIGKILL, "".join(seen)

    from core.store import open_store

    store = open_store(load_settings())
    try:
        before = store.count("p", _space(store, "p"))
    finally:
        store.close()
    assert 10 <= before < 200

    code, out, _ = run_cli(capsys, *argv[:-2], "--progress", "none")
    assert code == 0
    assert f"200 items, {200 - before} stored, {before} already stored, 0 rejected (ok)" in out
    store = open_store(load_settings())
    try:
        frame = store.payloads("p", _space(store, "p"), fields=["key"])
        assert len(frame) == 200 and frame["key"].is_unique
    finally:
        store.close()


# -- manifests --------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_manifest_ingest_keeps_metadata_filterable(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   tiny_clip_dir: Path, suffix: str) -> None:  # noqa: F811
    make_image_folder(tmp_path / "imgs", {"circle": 3, "square": 3})
    rows = [{"id": f"{label}-{i}", "image": f"imgs/{label}/{label}_{i:03d}.png", "label": label,
             "prediction": "circle", "confidence": 0.2 * (i + 1), "split": "train" if i else "test",
             "camera": "north" if i == 1 else "south", "exposure": i * 10}
            for label in ("circle", "square") for i in range(3)]
    manifest = write_manifest(tmp_path / f"manifest{suffix}", rows)
    code, out, err = run_cli(capsys, "ingest", "--manifest", manifest, "--project", "m", "--dataset", "train",
                             "--model", tiny_clip_dir, "--progress", "none")
    assert code == 0, err
    assert "6 items, 6 stored" in out

    from core.store import open_store

    store = open_store(load_settings())
    try:
        space = _space(store, "m")
        assert store.count("m", space, Filter(must=(Condition("meta.camera", equals="north"),))) == 2
        assert store.count("m", space, Filter(must=(Condition("meta.exposure", gte=15),))) == 2
        assert store.count("m", space, Filter.where(split="test")) == 2
        frame = store.payloads("m", space, fields=["key", "confidence"])
        assert dict(zip(frame["key"], frame["confidence"].round(3), strict=True))["square-2"] == 0.6
    finally:
        store.close()


def test_text_manifest_with_a_tiny_bert(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        tiny_bert_dir: Path) -> None:  # noqa: F811
    rows = [{"id": i, "text": text, "label": label}
            for i, (text, label) in enumerate([("a photo of a cat", "cat"), ("a red car", "car"), ("", "dog")])]
    manifest = write_manifest(tmp_path / "texts.csv", rows)
    code, out, _ = run_cli(capsys, "ingest", "--manifest", manifest, "--project", "t", "--dataset", "docs",
                           "--model", tiny_bert_dir, "--progress", "none")
    assert code == 3 and "3 items, 2 stored" in out and "rejected 2: empty text" in out


def test_labels_only_updates_stored_items(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vectors = np.eye(3, dtype=np.float32)
    pq.write_table(pa.table({"id": ["a", "b", "c"], "embedding": list(vectors)}), tmp_path / "v.parquet")
    assert run_cli(capsys, "ingest", "--embeddings", tmp_path / "v.parquet", "--project", "o",
                   "--dataset", "d", "--progress", "none")[0] == 0
    write_manifest(tmp_path / "labels.csv", [{"id": "a", "path": "x.png", "label": "cat"},
                                             {"id": "b", "path": "y.png", "label": "dog"}])
    code, out, _ = run_cli(capsys, "ingest", "--manifest", tmp_path / "labels.csv", "--labels-only",
                           "--project", "o", "--dataset", "d")
    assert code == 0 and "updated 2 of 2 items" in out
    from core.store import open_store

    store = open_store(load_settings())
    try:
        assert store.count("o", "own", Filter.where(label="dog")) == 1
    finally:
        store.close()


# -- own embeddings ---------------------------------------------------------------------------
def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("layout", ["parquet", "npy"])
def test_own_embeddings_round_trip_exactly(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           layout: str) -> None:
    vectors = _unit(30, 24)
    ids = [f"img-{i}" for i in range(30)]
    if layout == "parquet":
        pq.write_table(pa.table({"id": ids, "embedding": list(vectors)}), tmp_path / "v.parquet")
        extra = ["--embeddings", tmp_path / "v.parquet"]
    else:
        np.save(tmp_path / "v.npy", vectors)
        (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
        extra = ["--embeddings", tmp_path / "v.npy", "--ids", tmp_path / "ids.txt"]
    rows = [{"id": k, "text": f"item {k}", "label": "even" if i % 2 == 0 else "odd"} for i, k in enumerate(ids)]
    manifest = write_manifest(tmp_path / "meta.csv", rows[:20])
    code, out, err = run_cli(capsys, "ingest", *extra, "--manifest", manifest, "--project", "own",
                             "--dataset", "train", "--space", "resnet-pool5", "--progress", "none")
    assert code == 0, err
    assert "30 items, 30 stored" in out
    from core.store import open_store

    store = open_store(load_settings())
    try:
        (space,) = store.list_spaces("own")
        assert (space.name, space.dim, space.modality) == ("resnet-pool5", 24, "vector")
        pids = [point_id("own", "train", k) for k in ids]
        got, back = store.vectors("own", "resnet-pool5", pids)
        assert got == pids and np.array_equal(back, vectors)
        assert store.count("own", "resnet-pool5", Filter.where(label="even")) == 10
        assert store.count("own", "resnet-pool5", Filter(must=(Condition("label", missing=True),))) == 10
    finally:
        store.close()


def test_own_embeddings_of_the_wrong_size_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a", "b"], "embedding": list(_unit(2, 8))}), tmp_path / "first.parquet")
    assert run_cli(capsys, "ingest", "--embeddings", tmp_path / "first.parquet", "--project", "w",
                   "--dataset", "d", "--progress", "none")[0] == 0
    pq.write_table(pa.table({"id": ["c"], "embedding": list(_unit(1, 6))}), tmp_path / "smaller.parquet")
    code, out, err = run_cli(capsys, "ingest", "--embeddings", tmp_path / "smaller.parquet", "--project", "w",
                             "--dataset", "d2", "--progress", "none")
    assert code == 1 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and "smaller.parquet" in last and "6 dims" in last and "8-d" in last
    assert "Traceback" not in err
    pq.write_table(pa.table({"id": ["a", "b"], "embedding": [[1.0, 2.0], [3.0]]}), tmp_path / "ragged.parquet")
    code, _, err = run_cli(capsys, "ingest", "--embeddings", tmp_path / "ragged.parquet", "--project", "w",
                           "--dataset", "d3")
    assert code == 1 and "ragged.parquet: ragged vectors" in err and "row 2" in err


# -- bad input --------------------------------------------------------------------------------
def test_bad_inputs_fail_with_one_line_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              tiny_clip_dir: Path) -> None:  # noqa: F811
    (tmp_path / "bad.csv").write_text("path,label\na.png,cat\nb.png,dog,surprise\n")
    common = ["--project", "x", "--dataset", "y", "--model", tiny_clip_dir]
    code, _, err = run_cli(capsys, "ingest", "--manifest", tmp_path / "bad.csv", *common)
    assert code == 1 and "bad.csv" in err and "line 3" in err
    write_manifest(tmp_path / "ok.csv", [{"path": "a.png", "label": "cat"}])
    code, _, err = run_cli(capsys, "ingest", "--manifest", tmp_path / "ok.csv", "--label-column", "klass", *common)
    assert code == 1 and "no column 'klass'" in err
    code, _, err = run_cli(capsys, "ingest", "--manifest", tmp_path / "missing.csv", *common)
    assert code == 1 and "missing.csv: file not found" in err
    code, _, err = run_cli(capsys, "ingest", tmp_path / "no-folder", *common)
    assert code == 1 and "no-folder: not a folder" in err
    code, _, err = run_cli(capsys, "ingest", tmp_path, "--project", "a/b", "--dataset", "y")
    assert code == 1 and "project 'a/b' may contain only" in err
    code, _, err = run_cli(capsys, "--log-level", "WARNING", "ingest", "--manifest", tmp_path / "bad.csv", *common)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bombs_and_paths_outside_the_roots_are_rejected(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        tiny_clip_dir: Path) -> None:  # noqa: F811
    make_image_folder(tmp_path / "job" / "imgs", {"circle": 2})
    write_png_header(tmp_path / "job" / "imgs" / "bomb.png", 10_000, 10_000)
    secret = tmp_path / "secret"
    make_image_folder(secret, {"square": 1})
    rows = [{"path": "imgs/circle/circle_000.png"}, {"path": "imgs/circle/circle_001.png"},
            {"path": "imgs/bomb.png"}, {"path": str(secret / "square" / "square_000.png")},
            {"path": "../secret/square/square_000.png"}]
    manifest = write_manifest(tmp_path / "job" / "manifest.csv", rows)
    code, out, _ = run_cli(capsys, "ingest", "--manifest", manifest, "--project", "s", "--dataset", "d",
                           "--model", tiny_clip_dir, "--progress", "none")
    assert code == 3 and "5 items, 2 stored" in out
    assert "rejected imgs/bomb.png:" in out and "decompression-bomb guard" in out
    assert out.count("outside the allowed data roots") == 2
    # Naming the folder with --data-root makes it readable for this run.
    code, out, _ = run_cli(capsys, "ingest", "--manifest", manifest, "--project", "s", "--dataset", "d",
                           "--model", tiny_clip_dir, "--progress", "none", "--data-root", secret)
    assert code == 3 and "2 stored, 2 already stored, 1 rejected" in out  # the bomb stays out


# -- list and delete --------------------------------------------------------------------------
def _seed_two_datasets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for dataset, n in (("train", 4), ("test", 3)):
        ids = [f"{dataset}-{i}" for i in range(n)]
        pq.write_table(pa.table({"id": ids, "embedding": list(_unit(n, 5))}), tmp_path / f"{dataset}.parquet")
        code = run_cli(capsys, "ingest", "--embeddings", tmp_path / f"{dataset}.parquet", "--project", "pr",
                       "--dataset", dataset, "--progress", "none")[0]
        assert code == 0


def test_list_shows_projects_spaces_and_counts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "no projects" in out
    _seed_two_datasets(capsys, tmp_path)
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "project pr" in out and "own: 5-d vector" in out
    assert "    train: own 4" in out and "    test: own 3" in out
    code, out, _ = run_cli(capsys, "list", "--json", "--project", "pr")
    data = json.loads(out)
    (project,) = data["projects"]
    assert {d["name"]: d["counts"] for d in project["datasets"]} == {"train": {"own": 4}, "test": {"own": 3}}
    assert project["spaces"][0]["dim"] == 5
    code, _, err = run_cli(capsys, "list", "--project", "nope")
    assert code == 1 and err.splitlines()[-1].startswith("error: no project 'nope'")


def test_delete_asks_and_refuses_without_an_answer(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _seed_two_datasets(capsys, tmp_path)
    delete_test = ["delete", "--project", "pr", "--dataset", "test"]
    code, _, err = run_cli(capsys, *delete_test, stdin="", monkeypatch=monkeypatch)
    assert code == 2 and "pass --yes" in err
    code, _, err = run_cli(capsys, *delete_test, stdin="n\n", monkeypatch=monkeypatch)
    assert code == 1 and "not deleted" in err and "3 points" in err
    assert json.loads(run_cli(capsys, "list", "--json")[1])["projects"][0]["datasets"][0]["name"] == "test"
    code, out, _ = run_cli(capsys, *delete_test, stdin="y\n", monkeypatch=monkeypatch)
    assert code == 0 and "3 points removed" in out
    code, _, err = run_cli(capsys, *delete_test, "--yes")
    assert code == 1 and "no dataset 'test'" in err
    assert run_cli(capsys, "ingest", "--embeddings", tmp_path / "train.parquet", "--project", "pr",
                   "--dataset", "train", "--space", "other", "--progress", "none")[0] == 0
    code, out, _ = run_cli(capsys, "delete", "--project", "pr", "--space", "own", "--yes")
    assert code == 0 and "deleted space 'own' of project 'pr' (4 points)" in out
    code, out, _ = run_cli(capsys, "list", "--json")
    assert [s["name"] for s in json.loads(out)["projects"][0]["spaces"]] == ["other"]
    code, out, _ = run_cli(capsys, "delete", "--project", "pr", "--whole-project", "--yes")
    assert code == 0 and json.loads(run_cli(capsys, "list", "--json")[1])["projects"] == []


def test_store_option_points_at_another_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a"], "embedding": list(_unit(1, 3))}), tmp_path / "v.parquet")
    other = tmp_path / "other-store"
    assert run_cli(capsys, "ingest", "--embeddings", tmp_path / "v.parquet", "--project", "elsewhere",
                   "--dataset", "d", "--store", other, "--progress", "none")[0] == 0
    assert json.loads(run_cli(capsys, "list", "--json")[1])["projects"] == []
    data = json.loads(run_cli(capsys, "--store", other, "list", "--json")[1])
    assert [p["name"] for p in data["projects"]] == ["elsewhere"] and str(other) in data["store"]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9", "http://127.0.0.1:99999", "http://user:pw-s3cret@[bad",
                                 "localhost:6333"])
def test_a_bad_qdrant_url_is_a_message_naming_the_setting_never_a_traceback(
        url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_QDRANT_URL", url)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings: EMBEDSCOPE_QDRANT_URL") and "Traceback" not in err
    assert "s3cret" not in err


def test_a_server_that_does_not_speak_qdrant_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    import http.server
    import threading

    class NotQdrant(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{not json")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotQdrant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert main(["list", "--qdrant-url", f"http://127.0.0.1:{server.server_port}"]) == 1
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert "did not answer like a Qdrant server" in err and "Traceback" not in err
