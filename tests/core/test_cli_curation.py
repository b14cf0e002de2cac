"""`embedscope tag / label / history / undo` end to end on the real embedded store: what they change, what
they print, and the errors that name the bad id, key or entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import collections
from core.__main__ import main
from core.curation import history
from core.filters import Filter
from core.ids import point_id
from core.store import EdgeStore
from core.store.base import VectorStore
from core.types import LABEL, ORIGINAL_LABEL, TAGS
from tests.actors import ADMIN
from tests.core.test_analyse_pipeline import P, S
from tests.core.test_analyse_pipeline import _seed as seed_planted


@pytest.fixture
def planted(tmp_path: Path) -> tuple[str, dict[str, list[str]]]:
    """(store folder, ids per dataset) of the planted-problems data of the analyse tests."""
    path = str(tmp_path / "q")
    store = EdgeStore(path)
    ids = seed_planted(store)
    store.close()
    return path, ids


@pytest.fixture
def opened(planted: tuple[str, dict[str, list[str]]]) -> Iterator[VectorStore]:
    """The store the CLI writes to, opened here (the lease hands it over between commands)."""
    store = EdgeStore(planted[0], lock_timeout_s=30)
    yield store
    store.close()


def cli(capsys: pytest.CaptureFixture[str], path: str, *argv: object) -> tuple[int, str, str]:
    code = main(["--store", path, *[str(a) for a in argv]])
    out = capsys.readouterr()
    return code, out.out, out.err


def _tags(store: VectorStore, ids: list[str]) -> list[list[str]]:
    frame = store.payloads(P, S, Filter.ids(ids), fields=[TAGS]).reindex(ids)
    return [list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else [] for v in frame[TAGS]]


def test_tag_add_and_remove_by_ids_keys_collection_and_filter(planted: tuple[str, dict[str, list[str]]],
                                                              opened: VectorStore, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = planted
    train = ids["train"]
    id_file = tmp_path / "ids.txt"
    id_file.write_text("# three train items\n" + "\n".join(train[:3]) + "\n\n")
    code, out, _ = cli(capsys, path, "tag", "add", "--project", P, "--ids", id_file, "blurry", "check")
    assert code == 0 and "tagged 3 of 3" in out
    keys = tmp_path / "keys.txt"
    keys.write_text("train-2\ntrain-3\n")
    code, out, _ = cli(capsys, path, "tag", "add", "--project", P, "--ids", keys, "--dataset", "train", "blurry")
    assert code == 0 and "tagged 1 of 2" in out and "1 unchanged" in out
    collections.save(opened, P, "picked", ids["test"][:4], space=S, actor=ADMIN)
    assert cli(capsys, path, "tag", "add", "--project", P, "--collection", "picked", "check")[0] == 0
    code, out, _ = cli(capsys, path, "tag", "add", "--project", P, "--filter", "dataset=production",
                       "--filter", "tags is missing", "unlabeled")
    assert code == 0 and "tagged 70 of 70" in out
    assert opened.count(P, S, Filter.where(tags="blurry")) == 4
    assert opened.count(P, S, Filter.where(tags="check")) == 7
    assert _tags(opened, train[:4]) == [["blurry", "check"]] * 3 + [["blurry"]]
    code, out, _ = cli(capsys, path, "tag", "remove", "--project", P, "--filter", "tags=check", "check")
    assert code == 0 and "untagged 7 of 7" in out and opened.count(P, S, Filter.where(tags="check")) == 0
    assert [e.field for e in history.read_history(opened, P)] == ["tags"] * 5


def test_tag_errors_name_the_bad_line_key_or_project(planted: tuple[str, dict[str, list[str]]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = planted
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{ids['train'][0]}\ntrain-0\n")
    code, _, err = cli(capsys, path, "tag", "add", "--project", P, "--ids", bad, "x")
    assert code == 1 and "'train-0'" in err and "--dataset" in err
    code, _, err = cli(capsys, path, "tag", "add", "--project", P, "--ids", bad, "--dataset", "train", "x")
    assert code == 1 and f"train/{ids['train'][0]}" in err, "a key that is not in the dataset is named"
    code, _, err = cli(capsys, path, "tag", "add", "--project", "nope", "--filter", "label=cat", "x")
    assert code == 1 and "'nope'" in err
    assert cli(capsys, path, "tag", "add", "--project", P, "--filter", "label=cat", "--dataset", "train", "x")[0] == 2
    code, _, err = cli(capsys, path, "tag", "add", "--project", P, "--ids", tmp_path / "missing.txt", "x")
    assert code == 1 and "missing.txt" in err
    code, _, err = cli(capsys, path, "tag", "add", "--project", P, "--collection", "none", "x")
    assert code == 1 and "'none'" in err


def test_label_set_history_and_undo(planted: tuple[str, dict[str, list[str]]], opened: VectorStore,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = planted
    pid = ids["train"][10]
    before = opened.payloads(P, S, Filter.ids([pid]), fields=[LABEL])[LABEL].iloc[0]
    code, out, _ = cli(capsys, path, "label", "set", "--project", P, "--dataset", "train", "--key", "train-10",
                       "eel", "--note", "looked at it")
    assert code == 0 and f"train/train-10: {before!r} -> 'eel'" in out
    assert cli(capsys, path, "label", "set", "--project", P, "--dataset", "train", "--key", "train-10",
               "eel")[1].endswith("label unchanged ('eel')\n")
    assert cli(capsys, path, "label", "set", "--project", P, "--dataset", "train", "--key", "train-10",
               "--clear")[0] == 0
    now = opened.payloads(P, S, Filter.ids([pid]), fields=[LABEL, ORIGINAL_LABEL]).iloc[0]
    assert now[ORIGINAL_LABEL] == before and (now[LABEL] is None or now[LABEL] != now[LABEL])
    code, out, _ = cli(capsys, path, "history", "--project", P, "--dataset", "train", "--key", "train-10")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and "looked at it" in lines[2]
    assert lines[1].strip() == "train/train-10: eel -> (none)" and lines[3].strip() == f"train/train-10: {before} -> eel"
    code, out, _ = cli(capsys, path, "undo", "--project", P)
    assert code == 0 and "1 item(s) restored" in out
    assert opened.payloads(P, S, Filter.ids([pid]), fields=[LABEL])[LABEL].iloc[0] == "eel"
    first = history.read_history(opened, P)[-1].entry
    assert cli(capsys, path, "undo", "--project", P, first)[0] == 0
    assert opened.payloads(P, S, Filter.ids([pid]), fields=[LABEL])[LABEL].iloc[0] == before
    code, _, err = cli(capsys, path, "undo", "--project", P)
    assert code == 1 and "Nothing to undo" in err
    code, out, _ = cli(capsys, path, "history", "--project", P, "--json")
    entries = json.loads(out)
    assert [e["why"] for e in entries] == ["undo", "undo", "manual", "manual"]
    assert entries[-1]["undone_by"] == entries[0]["entry"] and entries[-1]["rows"]["key"] == ["train-10"]
    code, _, err = cli(capsys, path, "label", "set", "--project", P, "--dataset", "train", "--key", "nope", "x")
    assert code == 1 and "train/nope" in err
    assert cli(capsys, path, "label", "set", "--project", P, "--dataset", "train", "--key", "train-1")[0] == 2
    assert cli(capsys, path, "history", "--project", P, "--key", "train-1")[0] == 2


def test_accept_suggestions_dry_run_then_apply_as_one_entry(planted: tuple[str, dict[str, list[str]]],
                                                            opened: VectorStore,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = planted
    code, _, err = cli(capsys, path, "label", "accept-suggestions", "--project", P, "--space", S)
    assert code == 1 and "embedscope analyse" in err
    assert cli(capsys, path, "analyse", "--project", P, "--space", S, "--progress", "none")[0] == 0
    labels_before = opened.payloads(P, S, fields=[LABEL])
    code, out, _ = cli(capsys, path, "label", "accept-suggestions", "--project", P, "--space", S, "--dry-run")
    assert code == 0 and "dry run: nothing changed" in out
    count = int(out.split(" suggested label change")[0].split()[-1])
    assert count >= 4 and sum(f" train-{i} " in out for i in range(8)) >= 4, out  # most flipped labels
    assert opened.payloads(P, S, fields=[LABEL]).equals(labels_before) and history.read_history(opened, P) == []
    code, out, _ = cli(capsys, path, "label", "accept-suggestions", "--project", P, "--space", S)
    assert code == 0 and f"relabeled {count} item(s)" in out
    (entry,) = history.read_history(opened, P)
    assert entry.why == "finding" and len(entry.rows) == count
    code, out, _ = cli(capsys, path, "analyse", "--project", P, "--space", S, "--progress", "none", "--top", "40")
    assert f"Likely mislabels ({count} corrected or reviewed item(s) left out):" in out
    table = out.split("Likely mislabels")[1].split("\n\n")[0]
    assert code == 0 and not any(f" {r.key} " in table for r in entry.rows), "corrected items are not listed"
    # The re-analysis (labels changed) may flag other items; never the corrected ones again.
    again = cli(capsys, path, "label", "accept-suggestions", "--project", P, "--space", S, "--dry-run")[1]
    assert not any(f" {r.key} " in again for r in entry.rows), again
    assert point_id(P, "train", entry.rows[0].key) == entry.rows[0].point
