"""Test-wide setup: offline Hugging Face, an isolated data dir per test, a persistent numba cache."""

from __future__ import annotations

import os
from pathlib import Path

# Set before anything imports transformers / huggingface_hub / numba.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba-cache"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

# The tiny real models' session fixtures, shared by every tier (built once per test session).
from tests.tiny_models import (  # noqa: E402, F401
    tiny_bert_dir,
    tiny_clip_dir,
    tiny_resnet_dir,
    tiny_vit_dir,
)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own data dir and no stray EMBEDSCOPE_* settings from the shell."""
    for name in list(os.environ):
        if name.startswith("EMBEDSCOPE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EMBEDSCOPE_DATA_DIR", str(tmp_path / "embedscope-data"))
    # Tests must not read a developer's .env.
    monkeypatch.chdir(tmp_path)
