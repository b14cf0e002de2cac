"""One name, one meaning, one place: a second copy of a shared rule in core/, ui/, pages/ or Home.py fails here.

Each rule names the one file allowed to hold it and what every other file calls instead. The
source is read with `ast` (not text search), so comments and docstrings that mention a rule do
not count, while any spelling of the code does (aliases of numpy, `typing.Callable`, ...).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.filters import Condition, Filter, items_only
from core.types import ITEM_KIND, KIND

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    {*ROOT.glob("core/**/*.py"), *ROOT.glob("ui/**/*.py"), *ROOT.glob("pages/**/*.py"), ROOT / "Home.py"}
)


def _name(node: ast.AST) -> str:
    """`np.linalg.norm` -> "np.linalg.norm"; "" for anything that is not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _is_kind(node: ast.AST | None) -> bool:
    """The `kind` payload field, written as KIND, types.KIND or the literal "kind"."""
    if node is None:
        return False
    if isinstance(node, ast.Constant):
        return node.value == KIND
    return _name(node).split(".")[-1] == "KIND"


def _items_rule(node: ast.AST) -> bool:
    """A condition on `kind`: Condition(KIND, equals=...), a qdrant FieldCondition(key="kind", ...),
    Filter.where(kind=...)."""
    if not isinstance(node, ast.Call):
        return False
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if _name(node.func).endswith("where") and KIND in keywords:
        return True
    field = node.args[0] if node.args else keywords.get("field", keywords.get("key"))
    return _is_kind(field) and bool({"equals", "one_of", "match"} & keywords.keys())


def _callee(call: ast.Call) -> str:
    """The called function's own name: `sum` for np.sum(...) and for (x * x).sum(...)."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _calls_any(node: ast.AST, names: tuple[str, ...]) -> bool:
    return any(isinstance(n, ast.Call) and _callee(n) in names for n in ast.walk(node))


def _normaliser(node: ast.AST) -> bool:
    """An L2 norm or normalisation: *.linalg.norm(...), sklearn / torch normalize(...), or the
    square root of a sum of squares (sqrt(einsum(...)), sqrt((x * x).sum(...)))."""
    if not isinstance(node, ast.Call):
        return False
    name = _name(node.func)
    if name.endswith("linalg.norm") or name.split(".")[-1] in ("normalize", "l2_normalize"):
        return True
    return name.split(".")[-1] == "sqrt" and any(
        _calls_any(arg, ("einsum", "sum", "dot", "vdot", "inner")) for arg in node.args)


def _image_opener(node: ast.AST) -> bool:
    """PIL's Image.open(...) (or PIL.Image.open)."""
    return isinstance(node, ast.Call) and _name(node.func) in ("Image.open", "PIL.Image.open")


def _progress_type(node: ast.AST) -> bool:
    """Callable[[int, int], None], however Callable is imported."""
    if not isinstance(node, ast.Subscript) or _name(node.value).split(".")[-1] != "Callable":
        return False
    return ast.unparse(node.slice).replace(" ", "") in ("[int,int],None", "([int,int],None)")


def _name_rule(node: ast.AST) -> bool:
    """A name validator of its own: `def validate_name`, or a compiled regex bound to a *NAME* variable."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name == "validate_name"
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        named = any("name" in _name(t).lower() for t in targets)
        return named and _name(node.value.func).split(".")[-1] == "compile"
    return False


@dataclass(frozen=True)
class Rule:
    """A concept that lives in one file: `finds` spots a copy of it, `instead` says what to call."""

    concept: str
    home: str
    instead: str
    finds: Callable[[ast.AST], bool]

    def offences(self, relpath: str, source: str) -> list[str]:
        """"file:line: message" for each copy of the concept in source (none in its home file)."""
        if relpath == self.home:
            return []
        return [
            f"{relpath}:{node.lineno}: a second copy of {self.concept}; use {self.instead} instead"
            for node in ast.walk(ast.parse(source, filename=relpath)) if self.finds(node)
        ]


RULES = {
    "items": Rule('the "items, not detection objects" rule (a condition on `kind`)', "core/filters.py",
                  "core.filters.items_only(flt) (or a named filter next to it in core/filters.py)",
                  _items_rule),
    "normaliser": Rule("an L2 norm / normalisation", "core/linalg.py",
                       "core.linalg.l2_normalise(vectors) or core.linalg.row_norms(vectors)", _normaliser),
    "image_opener": Rule("an image opener (Image.open)", "core/datasets/images.py",
                         "the opener of core/datasets/images.py (EXIF rotation, alpha, pixel limit)",
                         _image_opener),
    "progress": Rule("the progress-callback type Callable[[int, int], None]", "core/types.py",
                     "core.types.Progress", _progress_type),
    "names": Rule("a name validator (def validate_name / a *NAME* regex)", "core/store/names.py",
                  "core.store.names.validate_name(name, what)", _name_rule),
}


def _source_offences(rule: Rule) -> list[str]:
    return [o for path in SOURCES
            for o in rule.offences(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("key", sorted(RULES))
def test_each_shared_rule_is_written_once(key: str) -> None:
    rule = RULES[key]
    assert (ROOT / rule.home).is_file(), f"{rule.home}, the home of {rule.concept}, is missing"
    offences = _source_offences(rule)
    assert not offences, "\n".join(offences)


# Source with copies of each rule, and how many copies it holds.
PLANTED: dict[str, tuple[str, int]] = {
    "items": ('from core.filters import Condition, Filter\nfrom core.types import KIND\n'
              'x = Filter(must_not=(Condition(KIND, equals="object"),))\n'
              'y = Filter.where(kind="item")\n', 2),
    "normaliser": ("import numpy as np\nn = np.linalg.norm(v, axis=1)\n"
                   "m = np.sqrt(np.einsum('ij,ij->i', v, v))\nk = np.sqrt((v * v).sum(axis=1))\n", 3),
    "image_opener": ("from PIL import Image\nimg = Image.open(path)\n", 1),
    "progress": ("from typing import Callable\nimport typing\nP = Callable[[int, int], None]\n"
                 "def f(p: typing.Callable[[int,int], None]) -> None: ...\n", 2),
    "names": ('import re\n_NAME = re.compile(r"^\\w+$")\ndef validate_name(name: str) -> str: ...\n', 2),
}
CLEAN = ('"""Mentions np.linalg.norm, Image.open and Condition(KIND, equals=...) in words only."""\n'
         "import numpy as np\nfrom core.filters import items_only\nfrom core.linalg import l2_normalise\n"
         "from core.types import Progress\nflt = items_only()\nx = l2_normalise(v)\ns = np.sqrt(n)\n"
         "def f(p: Progress | None) -> None: ...\nname = payload.get(KIND)\n")


@pytest.mark.parametrize("key", sorted(RULES))
def test_a_planted_copy_is_found_with_its_line_and_the_place_to_use(key: str) -> None:
    rule, (source, copies) = RULES[key], PLANTED[key]
    found = rule.offences("ui/planted.py", source)
    assert len(found) == copies, found
    assert all(o.startswith("ui/planted.py:") and rule.instead in o for o in found), found
    assert rule.offences(rule.home, source) == [], "the home file may hold the rule"
    assert rule.offences("ui/clean.py", CLEAN) == [], "calls of the shared helpers are not copies"


def test_items_only_is_the_required_kind_field_narrowed_by_the_callers_filter() -> None:
    assert items_only() == Filter(must=(Condition(KIND, equals=ITEM_KIND),))
    narrowed = items_only(Filter.where(split="test"))
    assert narrowed.must == (Condition(KIND, equals=ITEM_KIND), Condition("split", equals="test"))
    assert items_only(Filter(must_not=(Condition("label", missing=True),))).must_not == (
        Condition("label", missing=True),)
