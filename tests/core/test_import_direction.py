"""Arrows point inward: walk every module of core/ (ast) and fail on imports against the architecture.

Rules (docs/internal-apis.md, ARCHITECTURE.md):
* core never imports streamlit or ui;
* only core/store imports qdrant_client / qdrant_edge;
* only core/embedders imports torch / transformers, and only inside functions (lazily);
* pure computation (core/analysis, core/projection) imports no store, pipeline, CLI or entry point;
* adapters (core/datasets, core/embedders, core/store) import no pipeline, CLI or entry point;
* leaves (config, errors, ids, types, filters, linalg) import only other leaves;
* only the entry points (core/__main__.py, core/cli/) import core.cli.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
LEAVES = ("core.config", "core.errors", "core.ids", "core.types", "core.filters", "core.linalg")


@dataclass(frozen=True)
class Import:
    """One imported module name, where, and whether it runs at import time of its module."""

    module: str  # the module the file is (e.g. "core.store.edge")
    name: str  # the module imported (absolute, e.g. "core.store.base")
    file: str
    line: int
    top_level: bool  # executed when the module is imported (not inside a function / TYPE_CHECKING)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute names an ImportFrom brings in (`from . import x` -> package.x)."""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1])
        prefix = f"{base}.{node.module}" if node.module else base
    else:
        prefix = node.module or ""
    # `from pkg import sub` may import the submodule pkg.sub: count both.
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*"]


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import in the file, with whether it runs at module import time."""
    module = _module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or _is_type_checking(child)
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                names = _absolute(module, is_package, child)
            else:
                names = []
            for name in names:
                found.append(Import(module, name, str(path.relative_to(root.parent)), getattr(child, "lineno", 0), top_level))
            visit(child, top_level and not lazy)

    visit(tree, True)
    return found


def _is(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(root: Path) -> list[str]:
    """'file:line: message' for every import that breaks a rule, over all modules under root."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for imp in imports_of(path, root):
            where = f"{imp.file}:{imp.line}: {imp.module} imports {imp.name}"
            mod, name = imp.module, imp.name
            if _is(name, "streamlit", "ui"):
                problems.append(f"{where} (core never imports streamlit or ui)")
            if _is(name, "qdrant_client", "qdrant_edge") and not _is(mod, "core.store"):
                problems.append(f"{where} (only core/store may import Qdrant libraries)")
            if _is(name, "torch", "transformers"):
                if not _is(mod, "core.embedders"):
                    problems.append(f"{where} (only core/embedders may import torch / transformers)")
                elif imp.top_level:
                    problems.append(f"{where} at module level (import it inside the function that needs it)")
            if _is(mod, "core.analysis", "core.projection") and _is(
                name, "core.store", "core.pipeline", "core.cli", "core.__main__"
            ):
                problems.append(f"{where} (pure computation must not reach the store or orchestration)")
            if _is(mod, "core.datasets", "core.embedders", "core.store") and _is(
                name, "core.pipeline", "core.cli", "core.__main__"
            ):
                problems.append(f"{where} (adapters must not reach orchestration)")
            if _is(mod, *LEAVES) and _is(name, "core") and name != "core" and not _is(name, *LEAVES):
                problems.append(f"{where} (leaves import only other leaves)")
            if _is(name, "core.cli", "core.__main__") and not _is(mod, "core.cli", "core.__main__"):
                problems.append(f"{where} (only the entry points import the CLI)")
    return problems


def test_core_imports_point_inward() -> None:
    problems = violations(CORE)
    assert not problems, "imports against the architecture:\n" + "\n".join(problems)


def _write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


def test_the_checker_finds_planted_violations(tmp_path: Path) -> None:
    core = tmp_path / "core"
    _write(core, "__init__.py", "")
    _write(core, "types.py", "import numpy\nfrom core.errors import X\nfrom core.store import base\n")
    _write(core, "search.py", "import streamlit as st\nfrom qdrant_client import QdrantClient\n")
    _write(core, "analysis/__init__.py", "from ..store.base import VectorStore\n")
    _write(core, "embedders/__init__.py", "")
    _write(core, "embedders/hf.py", (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
        "def load():\n    import transformers\n    return transformers\n"
        "try:\n    import torch.nn\nexcept ImportError:\n    pass\n"
    ))
    _write(core, "store/edge.py", "import qdrant_edge\nfrom ui import resources\n")
    _write(core, "pipeline/ingest.py", "from core.cli import common\n")
    found = violations(core)
    expected = [
        "core/analysis/__init__.py:1: core.analysis imports core.store.base",
        "core/embedders/hf.py:8: core.embedders.hf imports torch.nn at module level",
        "core/pipeline/ingest.py:1: core.pipeline.ingest imports core.cli",
        "core/search.py:1: core.search imports streamlit",
        "core/search.py:2: core.search imports qdrant_client",
        "core/store/edge.py:2: core.store.edge imports ui",
        "core/types.py:3: core.types imports core.store",
    ]
    for line in expected:
        assert any(problem.startswith(line) for problem in found), (line, found)
    flagged = "\n".join(found)
    assert "hf.py:3" not in flagged and "hf.py:5" not in flagged  # TYPE_CHECKING and lazy imports are fine
    assert "types.py:1" not in flagged and "types.py:2" not in flagged  # numpy, another leaf
    assert "store/edge.py:1" not in flagged  # the store may import Qdrant


@pytest.mark.parametrize("module", ["core.embedders", "core.datasets", "core.pipeline.ingest", "core.__main__"])
def test_importing_core_does_not_load_torch(module: str) -> None:
    """The lazy-import rule, checked for real in a fresh interpreter."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out
