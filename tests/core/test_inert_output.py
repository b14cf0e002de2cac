"""Untrusted strings stay inert in what the project writes: no CSV cell that a spreadsheet would run
as a formula (every writer: exports, CLI --out, rejects), no password of the Qdrant URL in a
message, long strings shortened for display only."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import collections, export
from core.config import load_settings, redact_url
from core.display import DISPLAY_LIMIT, shorten
from core.errors import BadInputError
from core.ids import point_id
from core.pipeline.rejects import IngestReport, write_rejects
from core.store import open_store
from core.types import Item, Reject, SpaceInfo
from tests.actors import ADMIN

ROOT = Path(__file__).resolve().parents[2]
FORMULAS = ('=HYPERLINK("http://evil.test","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1")
P, SPACE = "inert", "own"


def _formula_cells(data: bytes) -> list[str]:
    """Cells of a CSV that a spreadsheet would evaluate (plain numbers such as -0.5 are fine)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return [cell for row in rows for cell in row
            if cell.startswith(export.FORMULA_START) and not _is_number(cell)]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+x", "'+x"), ("-x", "'-x"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-0.5", "-0.5"), ("+3e5", "+3e5"), ("-1+2", "'-1+2"), ("cat", "cat"), ("a=b", "a=b"),
    (-0.5, -0.5), (None, None), ("", ""),
])
def test_guard_cell(value: object, expected: object) -> None:
    assert export.guard_cell(value) == expected


def test_to_csv_guards_text_keeps_numbers_and_headers() -> None:
    frame = pd.DataFrame({"label": list(FORMULAS), "score": [-0.5] * len(FORMULAS),
                          "=head": ["ok"] * len(FORMULAS)})
    data = export.to_csv(frame)
    assert _formula_cells(data) == []
    back = pd.read_csv(io.BytesIO(data))
    assert back["score"].tolist() == [-0.5] * len(FORMULAS)  # numbers stay numbers
    assert back["label"].tolist() == ["'" + f for f in FORMULAS]  # the full value, guarded
    assert list(back.columns) == ["label", "score", "'=head"]
    assert '"label": "=HYPERLINK(' in export.to_jsonl(frame).decode()  # JSONL is data: unchanged


def test_rejects_csv_guards_keys_and_uris(tmp_path: Path) -> None:
    report = IngestReport(P, "ds", SPACE)
    report.rejects = [Reject(Item(key=f, uri=f"-{i}.png"), f"{f}: unreadable") for i, f in enumerate(FORMULAS)]
    path = write_rejects(report, tmp_path)
    assert path is not None and _formula_cells(path.read_bytes()) == []


def _seed_on_disk() -> list[str]:
    """Two datasets of planted clusters with formula-like labels, keys, splits and metadata in the
    test's on-disk embedded store."""
    rng = np.random.default_rng(0)
    store = open_store(load_settings())
    ids: list[str] = []
    try:
        store.ensure_space(P, SpaceInfo(SPACE, 8, "vector"))
        for dataset, n in (("train", 48), ("prod", 24)):
            centres = np.eye(8, dtype=np.float32)[:4] * 3
            items = [Item(key=f"={dataset}{i}", uri=None, label=FORMULAS[i % 4],
                          prediction=FORMULAS[(i + 1) % 4], confidence=0.5, split="@split",
                          meta={"note": "=meta", "x": -0.5}) for i in range(n)]
            vectors = centres[np.arange(n) % 4] + rng.normal(0, 0.1, (n, 8)).astype(np.float32)
            batch = [point_id(P, dataset, it.key) for it in items]
            store.upsert(P, SPACE, batch, vectors.astype(np.float32), [it.payload(dataset) for it in items])
            ids += batch
    finally:
        store.close()
    return ids


def test_every_cli_csv_and_collection_export_is_guarded(tmp_path: Path) -> None:
    from core.__main__ import main

    ids = _seed_on_disk()
    store = open_store(load_settings())
    try:
        collections.save(store, P, "queue", ids[:10], space=SPACE, description="=desc", actor=ADMIN)
        written = {"collection": collections.export_csv(store, P, "queue")}
    finally:
        store.close()
    runs = {
        "search": ["search", "--project", P, "--space", SPACE, "--like", ids[0], "--limit", "20"],
        "analyse": ["analyse", "--project", P, "--space", SPACE],
        "compare": ["compare", "train", "prod", "--project", P, "--space", SPACE],
        "collections": ["collections", "--project", P, "export", "queue"],
    }
    for name, argv in runs.items():
        out = tmp_path / f"{name}.csv"
        assert main([*argv, "--out", str(out), *(["--progress", "none"] if name in ("analyse", "compare")
                                                  else [])]) == 0, name
        written[name] = out.read_bytes()
    for name, data in written.items():
        assert _formula_cells(data) == [], name
        assert "'=HYPERLINK" in data.decode() or "'=train" in data.decode(), name  # guarded, kept


def test_csv_is_written_only_through_core_export() -> None:
    """One CSV writer: a to_csv( / csv.writer( anywhere else would skip the formula guard."""
    allowed = {"core/pipeline/rejects.py: writer = csv.writer(handle)"}  # rows go through csv_row
    found = set()
    for folder in ("core", "ui", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "core" / "export.py":
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                code = line.replace("export.to_csv(", "")
                if any(n in code for n in (".to_csv(", "csv.writer(", "csv.DictWriter(")):
                    found.add(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert found <= allowed, found - allowed
    assert "writerow(csv_row(" in (ROOT / "core/pipeline/rejects.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("url, shown", [
    ("http://user:s3cret@qdrant:6333", "http://***@qdrant:6333"),
    ("https://s3cret@qdrant/x?y=1", "https://***@qdrant/x?y=1"),
    ("http://qdrant:6333", "http://qdrant:6333"),
    ("user:s3cret@qdrant:6333", "***@qdrant:6333"),
    ("http://u:s3cret@[::1", "***@[::1"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    if "://" in url and "[" not in url:
        assert load_settings(qdrant_url=url).describe_store().endswith(shown)
    else:  # not a usable URL: refused by the settings, still without the secret
        with pytest.raises(BadInputError, match="EMBEDSCOPE_QDRANT_URL") as refused:
            load_settings(qdrant_url=url)
        assert "s3cret" not in str(refused.value)


def test_cli_error_never_prints_the_url_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "list", "--qdrant-url", "http://u:s3cret@127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "EMBEDSCOPE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path),
             "EMBEDSCOPE_QDRANT_TIMEOUT_S": "2"})
    assert result.returncode == 1
    assert "127.0.0.1:9" in result.stderr and "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_shorten_is_one_line_and_bounded() -> None:
    assert shorten("x" * 5000) == "x" * (DISPLAY_LIMIT - 1) + "…"
    assert shorten("a\r\nb\tc") == "a b c" and shorten(None) == "" and shorten(3.5) == "3.5"
    assert shorten("y" * 100_000, None) == "y" * 100_000
