"""Labeling-tool round trip: Label Studio / COCO / CSV exports checked by the formats' own rules, imports previewed and applied."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core import collections
from core.__main__ import main
from core.config import Settings
from core.curation.history import read_history
from core.errors import BadInputError, NotFoundError
from core.ids import point_id
from core.interop import coco, labelstudio, selection
from core.interop.exporting import UrlOptions, build
from core.interop.label_import import apply_import, preview_import, read_labels
from core.interop.urls import LOCAL_FILES, image_url
from core.store.base import VectorStore
from core.types import Item, SpaceInfo
from tests.actors import ADMIN, user
from tests.core.conftest import make_store

P, SPACE = "proj", "own"
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "labelstudio_tasks.schema.json"
CLASSES = ("cat", "dog", "bird")


def seed(store: VectorStore, data: Path, n: int = 12) -> list[str]:
    """n real PNG images of dataset "train" (sizes vary, every 4th unlabeled) and 3 text items of
    dataset "notes" in one space; returns the train ids."""
    store.ensure_space(P, SpaceInfo(SPACE, 8, "vector"))
    rng = np.random.default_rng(0)
    items: list[tuple[str, Item]] = []
    for i in range(n):
        path = data / "imgs" / f"sub dir/{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + i, 10 + i), (i * 20, 0, 0)).save(path)
        items.append(("train", Item(key=f"sub dir/{i:02d}.png", uri=str(path),
                                    label=None if i % 4 == 3 else CLASSES[i % 3], prediction=CLASSES[(i + 1) % 3])))
    items += [("notes", Item(key=f"n{i}", text=f"note number {i}", label="dog")) for i in range(3)]
    ids = [point_id(P, ds, it.key) for ds, it in items]
    store.upsert(P, SPACE, ids, rng.normal(size=(len(ids), 8)).astype(np.float32), [it.payload(ds) for ds, it in items])
    return ids[:n]


@pytest.fixture
def seeded(tmp_path: Path, settings: Settings) -> tuple[Path, list[str]]:
    """An embedded store on disk (closed again, so the CLI opens it) with a collection "c" of the
    first 8 train items."""
    path = tmp_path / "store"
    store = make_store("edge", path)
    try:
        ids = seed(store, tmp_path / "data")
        collections.save(store, P, "c", ids[:8], space=SPACE, actor=ADMIN)
    finally:
        store.close()
    return path, ids


def check_against_config(tasks: list[dict[str, Any]], config: str) -> None:
    """What Label Studio checks against the labeling config (TaskValidator.check_data and
    label_studio_sdk LabelInterface._validate_region_logic): every $variable of an object tag is
    in each task's data as text, and each region names a declared control (from_name), one of its
    targets (to_name), the control's type and only declared choices."""
    root = ET.fromstring(config)
    variables = {el.get("value", "")[1:] for el in root.iter() if el.get("value", "").startswith("$")}
    controls = {el.get("name"): el for el in root.iter("Choices")}
    for n, task in enumerate(tasks):
        for var in variables:
            assert isinstance(task["data"].get(var), str), (n, var)
        for pred in task.get("predictions", []) + task.get("annotations", []):
            for region in pred["result"]:
                control = controls[region["from_name"]]
                assert region["to_name"] in control.get("toName", "").split(","), region
                assert region["type"] == control.tag.lower()
                declared = {c.get("value") for c in control.iter("Choice")}
                assert set(region["value"]["choices"]) <= declared, region


def validate_labelstudio(tasks: Any, config: str) -> None:
    jsonschema.validate(tasks, json.loads(SCHEMA.read_text()))
    check_against_config(tasks, config)


def export_files(tmp_path: Path, store_path: Path, *args: str, name: str = "export.json") -> tuple[int, Path]:
    out = tmp_path / "out" / name
    code = main(["--store", str(store_path), "export", "--project", P, "--out", str(out), *args])
    return code, out


def test_schema_rejects_what_label_studio_rejects() -> None:
    """The schema is not vacuous: each broken task below is one Label Studio's import refuses."""
    good = {"data": {"image": "x"}, "predictions": [{"result": [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]}]}
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate([good], schema)
    broken = [[], [{"predictions": []}], [{"data": "x"}], [{"data": {"a": 1}, "predictions": [{}]}],
              [{"data": {"a": 1}, "annotations": [{"result": {}}]}],
              [{"data": {"a": 1}, "predictions": [{"score": 2, "result": []}]}],
              [{"data": {"a": 1}, "predictions": [{"result": [{"from_name": "label", "type": "choices",
                                                               "to_name": "image", "value": {}}]}]}]]
    for case in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(case, schema)


def test_labelstudio_export_of_a_collection_passes_the_format_check(tmp_path: Path, seeded) -> None:
    store_path, ids = seeded
    root = tmp_path / "data"
    code, out = export_files(tmp_path, store_path, "--format", "labelstudio", "--collection", "c",
                             "--local-files-root", str(root))
    assert code == 0
    tasks = json.loads(out.read_text())
    config = (out.parent / "export.labeling-config.xml").read_text()
    validate_labelstudio(tasks, config)
    assert [t["data"]["embedscope_id"] for t in tasks] == ids[:8]  # the collection's order
    choices = [c.get("value") for c in ET.fromstring(config).iter("Choice")]
    assert choices == sorted(CLASSES)  # every class of the dataset, whether in the collection or not
    for task, pid in zip(tasks, ids[:8], strict=True):
        # The URL names the file under the document root Label Studio is started with.
        url = task["data"]["image"]
        assert url.startswith(LOCAL_FILES)
        assert (root / unquote(url[len(LOCAL_FILES):])).is_file()
        assert task["meta"]["embedscope_id"] == pid and task["meta"]["dataset"] == "train"
    labeled = [t for t in tasks if t.get("predictions")]
    assert len(labeled) == 6  # items 3 and 7 have no label: no pre-annotation
    assert {t["predictions"][0]["result"][0]["value"]["choices"][0] for t in labeled} <= set(CLASSES)


def _annotated(tasks: list[dict[str, Any]], new: dict[int, str | None]) -> list[dict[str, Any]]:
    """What Label Studio's JSON export of these tasks looks like after annotation: task n gets the
    choice new[n] (None: the annotator skipped it, a cancelled annotation)."""
    out = []
    for n, task in enumerate(tasks):
        done = dict(task, id=n + 1, annotations=[])
        if n in new:
            label = new[n]
            region = {"id": "r", "from_name": "label", "to_name": "image", "type": "choices",
                      "value": {"choices": [label or "cat"]}}
            done["annotations"] = [{"id": 10 + n, "result": [region], "was_cancelled": label is None,
                                    "created_at": "2026-11-30T10:00:00.000000Z",
                                    "updated_at": "2026-11-30T10:00:00.000000Z"}]
        out.append(done)
    return out


def test_corrected_labelstudio_export_imports_back_with_a_preview(tmp_path: Path, seeded, capsys) -> None:
    store_path, ids = seeded
    export_files(tmp_path, store_path, "--format", "labelstudio", "--collection", "c")
    capsys.readouterr()
    tasks = json.loads((tmp_path / "out" / "export.json").read_text())
    # 0: cat -> dog (changed), 1: dog kept, 3: unlabeled -> bird (changed), 5: skipped; the rest untouched
    result = _annotated(tasks, {0: "dog", 1: "dog", 3: "bird", 5: None})
    # An older, superseded annotation of task 1 says "bird": the newest one wins.
    result[1]["annotations"].insert(0, dict(result[1]["annotations"][0], id=9, updated_at="2026-11-29T00:00:00Z",
                                            result=[dict(result[1]["annotations"][0]["result"][0],
                                                         value={"choices": ["bird"]})]))
    result.append({"id": 99, "data": {"image": "x", "key": "gone.png", "dataset": "train"},
                   "annotations": [{"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                                "value": {"choices": ["cat"]}}]}]})
    exported = tmp_path / "project-1-at-2026.json"
    exported.write_text(json.dumps(result))
    validate_labelstudio(result[:-1], (tmp_path / "out" / "export.labeling-config.xml").read_text())

    code = main(["--store", str(store_path), "import-labels", str(exported), "--project", P, "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("2 changed, 1 unchanged, 1 unknown, 5 without a label")
    assert "gone.png" in out and "dry run" in out
    store = make_store("edge", store_path)
    try:
        assert selection.current_items(store, P, SPACE, [ids[0]])["label"].tolist() == ["cat"]  # untouched
    finally:
        store.close()

    assert main(["--store", str(store_path), "import-labels", str(exported), "--project", P]) == 0
    assert "set 2 label(s)" in capsys.readouterr().out
    store = make_store("edge", store_path)
    try:
        labels = selection.current_items(store, P, SPACE, [ids[0], ids[1], ids[3]])["label"].tolist()
        assert labels == ["dog", "dog", "bird"]
        entry = read_history(store, P)[0]
        assert entry.why == "import" and {(r.key, r.old, r.new) for r in entry.rows} == {
            ("sub dir/00.png", "cat", "dog"), ("sub dir/03.png", None, "bird")}
    finally:
        store.close()


def test_coco_export_loads_in_pycocotools_and_imports_back(tmp_path: Path, seeded, settings: Settings) -> None:
    from pycocotools.coco import COCO

    store_path, ids = seeded
    code, out = export_files(tmp_path, store_path, "--format", "coco", "--collection", "c")
    assert code == 0
    api = COCO(str(out))
    assert len(api.getImgIds()) == 8 and len(api.getAnnIds()) == 6
    cats = {c["id"]: c["name"] for c in api.loadCats(api.getCatIds())}
    for img in api.loadImgs(api.getImgIds()):
        n = ids.index(img["embedscope_id"])
        assert (img["width"], img["height"]) == (20 + n, 10 + n)  # read from the file
        anns = api.loadAnns(api.getAnnIds(imgIds=[img["id"]]))
        assert [cats[a["category_id"]] for a in anns] == ([] if n % 4 == 3 else [CLASSES[n % 3]])
        assert all("bbox" not in a for a in anns)  # image-level: no box
    # CVAT-style edit: drop our extra fields (a tool may), change image 1's class to "bird".
    doc = json.loads(out.read_text())
    for img in doc["images"]:
        del img["embedscope_id"], img["dataset"], img["key"]
    bird = next(c["id"] for c in doc["categories"] if c["name"] == "bird")
    doc["annotations"].append({"id": 100, "image_id": 1, "category_id": bird})
    labels = coco.parse_coco(doc, "edited.json")
    store = make_store("edge", store_path)
    try:
        preview = preview_import(store, P, labels, dataset="train")
        assert [(r.key, r.old, r.new) for r in preview.changed] == [("sub dir/00.png", "cat", "bird")]
        assert len(preview.unchanged) == 5 and not preview.unknown and len(preview.unlabeled) == 2
    finally:
        store.close()


def test_csv_round_trip_through_a_spreadsheet(tmp_path: Path, seeded, capsys) -> None:
    store_path, ids = seeded
    code, out = export_files(tmp_path, store_path, "--format", "csv", "--collection", "c", name="export.csv")
    assert code == 0
    capsys.readouterr()
    frame = pd.read_csv(out)
    assert frame["id"].tolist() == ids[:8]
    frame.loc[2, "label"] = "=cmd"  # a formula-like label: exported guarded, imported as typed
    frame.loc[4, "label"] = "cat"
    frame.to_csv(out, index=False)
    assert main(["--store", str(store_path), "import-labels", str(out), "--project", P, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 changed, 4 unchanged, 0 unknown, 2 without a label")
    # Key-only rows (a Label Studio CSV export: its "id" is its own task number) need --dataset.
    sheet = tmp_path / "ls.csv"
    sheet.write_text("id,key,label\n1,sub dir/00.png,bird\n2,nope.png,cat\n")
    assert main(["--store", str(store_path), "import-labels", str(sheet), "--project", P,
                 "--dataset", "train", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("1 changed, 0 unchanged, 1 unknown")


@pytest.mark.parametrize(("content", "named"), [
    ('{"not": "tasks"}', "neither a Label Studio export"),
    ('[{"data": {}, "annotations": {"result": []}}]', "task 0: 'annotations' must be a list"),
    ('[{"id": 7, "data": {}, "annotations": [{"result": [{"type": "choices", "value": {"choices": "cat"}}]}]}]',
     "task 0 (Label Studio id 7), annotation: a choices result needs"),
    ("[1, 2", "not valid JSON (line 1"),
])
def test_a_bad_file_is_refused_naming_file_task_and_field(tmp_path: Path, capsys, content: str, named: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    # The file is read before the store is opened: a bad one is refused with no store at all.
    assert main(["--store", str(tmp_path / "no-store"), "import-labels", str(bad), "--project", P]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and named in err, err


def test_csv_without_a_label_column_names_its_columns() -> None:
    with pytest.raises(BadInputError, match=r"x\.csv: no 'label' column \(columns: id, klass\)"):
        read_labels(b"id,klass\n1,cat\n", "x.csv")


def test_text_items_and_tags_export(tmp_path: Path, seeded) -> None:
    store_path, ids = seeded
    store = make_store("edge", store_path)
    try:
        notes = [point_id(P, "notes", f"n{i}") for i in range(3)]
        store.set_payload(P, notes[:2] + ids[:1], [{"tags": ["check"]}] * 3)
        items = selection.from_tag(store, P, SPACE, "check")
        assert set(items.index) == set(notes[:2] + ids[:1])
        made = build(store, Settings(), P, SPACE, items.loc[notes[:2]], "labelstudio", stem="t")
        tasks = json.loads(made.files[0][1])
        config = made.files[1][1].decode()
        validate_labelstudio(tasks, config)
        assert '<Text name="text" value="$text"/>' in config and "<Image" not in config
        assert [t["data"]["text"] for t in tasks] == ["note number 0", "note number 1"]
        assert tasks[0]["predictions"][0]["result"][0]["to_name"] == "text"
        with pytest.raises(NotFoundError, match="tagged 'nope'"):
            selection.from_tag(store, P, SPACE, "nope")
    finally:
        store.close()


def test_labeling_config_escapes_class_names() -> None:
    config = labelstudio.labeling_config(['a "quoted" <b>', "x&y"])
    values = [c.get("value") for c in ET.fromstring(config).iter("Choice")]
    assert values == ['a "quoted" <b>', "x&y"]


def test_image_urls(tmp_path: Path) -> None:
    path = tmp_path / "a b" / "c#1.png"
    assert image_url(str(path), "c#1.png", root=tmp_path) == LOCAL_FILES + "a%20b/c%231.png"
    assert image_url(str(path), None) == LOCAL_FILES + str(path).lstrip(os.sep).replace(" ", "%20").replace("#", "%23")
    assert image_url(str(path), "k/c.png", prefix="http://h:8000/") == "http://h:8000/k/c.png"
    assert image_url(str(path), "k", prefix="http://h", root=tmp_path) == "http://h/a%20b/c%231.png"
    assert image_url("https://x.org/i.png", "k", prefix="http://h") == "https://x.org/i.png"
    assert image_url(None, "k") is None
    with pytest.raises(BadInputError, match="not under the local-files root"):
        image_url("/elsewhere/i.png", "k", root=tmp_path)


def test_finding_export_lists_the_planted_mislabels(tmp_path: Path, settings: Settings) -> None:
    from core.pipeline.analyse import run_analysis
    from tests.core.conftest import seed_clusters

    store = make_store("edge", tmp_path / "s")
    try:
        ids, _, clusters = seed_clusters(store, P, SPACE)
        flipped = [ids[i] for i in (1, 32, 63)]  # labeled items moved to the next cluster's label
        store.set_payload(P, flipped, [{"label": f"c{(clusters[i] + 1) % 4}"} for i in (1, 32, 63)])
        run_analysis(store, P, SPACE, actor=ADMIN)
        items = selection.from_finding(store, P, SPACE, "mislabels")
        assert set(flipped) <= set(items.index[:6])
        assert items["score"].is_monotonic_decreasing
        made = build(store, settings, P, SPACE, items, "labelstudio", stem="m", urls=UrlOptions(prefix="http://h"))
        tasks = json.loads(made.files[0][1])
        assert [t["data"]["embedscope_id"] for t in tasks] == list(items.index)
        assert "suggested_label" in tasks[0]["data"]
        with pytest.raises(BadInputError, match="--cluster"):
            selection.from_finding(store, P, SPACE, "error-cluster")
    finally:
        store.close()


def test_apply_writes_one_history_entry_and_nothing_when_unchanged(tmp_path: Path, settings: Settings) -> None:
    store = make_store("server-local")
    try:
        ids = seed(store, tmp_path / "data", n=4)
        labels = read_labels(b"key,label\nsub dir/00.png,dog\nsub dir/01.png,dog\n", "fix.csv")
        preview = preview_import(store, P, labels, dataset="train", source="fix.csv")
        entry = apply_import(store, P, preview, actor=user("tester"))
        assert entry is not None and entry.why == "import" and entry.who == "tester" and len(entry.rows) == 1
        assert selection.current_items(store, P, SPACE, ids[:1])["label"].tolist() == ["dog"]
        again = preview_import(store, P, labels, dataset="train")
        assert not again.changed and apply_import(store, P, again, actor=user("tester")) is None
    finally:
        store.close()


def test_coco_sizes_are_upright_and_unreadable_files_are_left_out(tmp_path: Path, settings: Settings) -> None:
    data = tmp_path / "data"
    turned = data / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": shown 30 wide, 40 high
    Image.new("RGB", (40, 30)).save(turned, exif=exif)
    (data / "broken.png").write_bytes(b"not an image")
    items = pd.DataFrame({"dataset": ["d", "d", "d"], "key": ["turned.jpg", "broken.png", "t"],
                          "uri": [str(turned), str(data / "broken.png"), None], "label": ["a", "a", "a"]},
                         index=["i1", "i2", "i3"])
    made = coco.to_coco(items, ["a"], size_of=lambda uri: coco.image_size(uri, settings))
    assert [(i["file_name"], i["width"], i["height"]) for i in made.doc["images"]] == [("turned.jpg", 30, 40)]
    assert made.skipped == ["d/broken.png", "d/t"]


def test_json_min_and_old_completions_are_read() -> None:
    pid = point_id(P, "train", "a.png")
    json_min = [{"image": "/data/local-files/?d=a.png", "embedscope_id": pid, "dataset": "train", "key": "a.png",
                 "id": 5, "label": "dog", "annotator": 1},
                {"image": "x", "key": "b.png", "id": 6, "label": {"choices": ["cat", "bird"]}},
                {"image": "y", "key": "c.png", "id": 7}]
    rows = read_labels(json.dumps(json_min).encode(), "min.json")
    assert [(r.point, r.key, r.label) for r in rows] == [(pid, "a.png", "dog"), (None, "b.png", "cat"),
                                                         (None, "c.png", None)]
    old = [{"data": {"key": "a.png"}, "completions": [
        {"result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["bird"]}}]}]}]
    assert read_labels(json.dumps(old).encode(), "old.json")[0].label == "bird"
