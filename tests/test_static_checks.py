"""The static checks run by the test command: ruff (lint, import order, pyupgrade, bugbear) on
the whole repository and mypy on core/ and ui/ (settings in pyproject.toml)."""

from __future__ import annotations

import re
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


# Emoji and pictographs (and the variation selector that turns a symbol into one): the test
# browser and many Linux desktops have no emoji font, so they show as empty boxes. Icons are
# Streamlit's Material icons (":material/name:").
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")


def test_the_dashboard_uses_no_emoji() -> None:
    files = [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _EMOJI.search(line)]
    assert not found, "emoji in the dashboard (use :material/...: icons):\n" + "\n".join(found)
