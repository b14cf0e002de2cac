"""The static checks run by the test command: ruff (lint, import order, pyupgrade, bugbear) on
the whole repository and mypy on core/ and ui/ (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, f"ruff check . found problems:\n{result.stdout}{result.stderr}"


@pytest.mark.timeout(600)
def test_mypy_passes_on_core_and_ui() -> None:
    result = _run("mypy")  # files = ["core", "ui"] in pyproject.toml
    assert result.returncode == 0, f"mypy core ui failed:\n{result.stdout}{result.stderr}"
