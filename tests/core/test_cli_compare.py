"""`embedscope compare` on a seeded store (drift figures, regions, novel items, --out CSV), and the
persisted figures keeping their significant digits (a p-value of 1e-9 is not 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.__main__ import main
from core.config import load_settings
from core.pipeline.analysis_io import doc_to_frame, frame_to_doc, significant
from tests.core.conftest import seed_clusters

P, S = "proj", "own"


@pytest.fixture
def seeded() -> None:
    """train: 4 planted clusters; prod: 4 clusters elsewhere (a drifted dataset), same space."""
    from core.store import open_store

    store = open_store(load_settings())
    try:
        seed_clusters(store, P, S, "train", seed=0)
        seed_clusters(store, P, S, "prod", seed=1, per=20)
    finally:
        store.close()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_prints_the_figures_and_writes_the_novelty_csv(seeded: None, capsys: pytest.CaptureFixture[str],
                                                                tmp_path) -> None:
    out_file = tmp_path / "novelty.csv"
    code, out, err = run_cli(capsys, "compare", "--project", P, "--space", S, "train", "prod",
                             "--top", "3", "--out", out_file, "--progress", "none")
    assert code == 0, err
    assert "prod (80 items) compared with train (120 items) - computed" in out
    auc = float(out.split("domain classifier AUC ")[1].split()[0])
    assert auc > 0.9, "clusters placed elsewhere are told apart from train"
    assert "0.5 = the two sets are indistinguishable" in out  # the AUC's meaning
    assert "kNN test:" in out and "the two are not mixed" in out
    assert "Label shift (label): total variation" in out
    assert "Regions:" in out and "Most novel items of prod" in out
    novel_rows = out.split("Most novel items of prod")[1].split(" rows written")[0].splitlines()[2:-1]
    assert len(novel_rows) == 3 and all(row.split()[0] == "prod" for row in novel_rows), "--top 3, B's items"
    frame = pd.read_csv(out_file)
    assert len(frame) == 80 and f"80 rows written to {out_file}" in out
    assert {"id", "key", "score", "nearest_a", "nearest_similarity", "region"} <= set(frame.columns)
    assert frame["score"].is_monotonic_decreasing and (frame["dataset"] == "prod").all()
    code, out, _ = run_cli(capsys, "compare", "--project", P, "--space", S, "train", "prod", "--progress", "none")
    assert code == 0 and " - reused" in out


def test_compare_two_splits_of_one_dataset(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "compare", "--project", P, "--space", S, "train:train", "train:test",
                             "--progress", "none")
    assert code == 0, err
    assert "train · split=test (60 items) compared with train · split=train (60 items)" in out
    auc = float(out.split("domain classifier AUC ")[1].split()[0])
    assert auc < 0.75, "alternating splits of the same clusters are hard to tell apart"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["train", "prod", "--top", "-1"], 2, "--top must be >= 0"),
    (["train", "train:test"], 1, "error: 'train' contains its split"),
    (["train", "nope"], 1, "error: "),
    (["train", "prod", "--out", "x.txt"], 1, "error: "),
    (["train"], 2, "the following arguments are required"),
])
def test_compare_errors_exit_like_the_other_commands(seeded: None, capsys: pytest.CaptureFixture[str],
                                                     argv: list[str], code: int, message: str) -> None:
    got, out, err = run_cli(capsys, "compare", "--project", P, "--space", S, "--progress", "none", *argv)
    assert got == code and message in err and out == ""


def test_persisted_floats_keep_six_significant_digits() -> None:
    frame = pd.DataFrame({"p_value": [1e-9, 1.23456789e-12, 0.5, np.nan], "ratio": [123456.789, -3.14159265,
                                                                                     0.0, 2e300]})
    back = doc_to_frame(frame_to_doc(frame))
    assert back["p_value"].iloc[0] == 1e-9 and back["p_value"].iloc[1] == pytest.approx(1.23457e-12, rel=1e-12)
    assert back["p_value"].iloc[2] == 0.5 and np.isnan(back["p_value"].iloc[3])
    assert back["ratio"].tolist() == [123457.0, -3.14159, 0.0, 2e300]
    assert np.array_equal(significant(np.array([0.0, -np.inf]), 6), np.array([0.0, -np.inf]))
