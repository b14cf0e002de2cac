"""One side of a comparison (a dataset, or one split of it): text forms, overlap check, key."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import BadInputError
from core.filters import Filter, objects_only
from core.pipeline.analysis_io import doc_key
from core.types import ITEM_KIND, OBJECT_KIND, SPLIT

# Text forms of a split side: the display name "<dataset> · split=<value>" and the typeable
# "<dataset>:<value>". Dataset names never hold '·' or ':' (core.store.names), so the first mark
# found ends the dataset name and a plain dataset name always parses as the whole dataset.
SPLIT_MARK = " · split="
SHORT_MARK = ":"


@dataclass(frozen=True)
class CompareSide:
    """One side of a comparison: a whole dataset, or only its items whose payload `split`
    equals `split` (e.g. the "test" split of a single dataset holding train and test)."""

    dataset: str
    split: str | None = None

    @property
    def name(self) -> str:
        """"train" or "all-data · split=test"; CompareSide.parse(name) gives the side back."""
        return self.dataset if self.split is None else f"{self.dataset}{SPLIT_MARK}{self.split}"

    def __str__(self) -> str:
        return self.name

    def filter(self) -> Filter | None:
        """The payload filter selecting this side's items inside its dataset (None: all)."""
        return None if self.split is None else Filter.where(**{SPLIT: self.split})

    @classmethod
    def parse(cls, text: str) -> CompareSide:
        """A side from "dataset", "dataset · split=value" or "dataset:value"."""
        for mark in (SPLIT_MARK, SHORT_MARK):
            dataset, found, split = text.partition(mark)
            if found:
                if not dataset.strip() or not split:
                    raise BadInputError(
                        f"Cannot read {text!r}: use 'dataset' or 'dataset{SPLIT_MARK}split'")
                return cls(dataset.strip(), split)
        if not text.strip():
            raise BadInputError("Name a dataset (or 'dataset:split') to compare")
        return cls(text.strip())


def as_side(side: str | CompareSide) -> CompareSide:
    """A CompareSide as is; text through CompareSide.parse (a plain dataset name: all of it)."""
    return side if isinstance(side, CompareSide) else CompareSide.parse(side)


def side_problem(a: str | CompareSide, b: str | CompareSide) -> str | None:
    """Why B cannot be compared against A (in words), or None when it can. The two sides must
    not share items: the same side twice, or a dataset against one of its own splits, is refused."""
    a, b = as_side(a), as_side(b)
    if a == b:
        return f"Choose two different datasets or splits to compare (got {a.name!r} twice)"
    if a.dataset == b.dataset and (a.split is None or b.split is None):
        return (f"{a.dataset!r} contains its split {(a if a.split else b).name!r}: choose two "
                f"different datasets, or two different splits of {a.dataset!r}")
    return None


def compare_key(space: str, a: str | CompareSide, b: str | CompareSide, kind: str = ITEM_KIND) -> str:
    """Document key of the comparison of B against A in a space (no store access); kind: the points
    compared (items, or detection objects: a comparison of its own, keyed apart)."""
    # A dataset-level key is what it was before splits existed, so those results are reused;
    # \x1d never occurs in a dataset name, so a split side cannot collide with a dataset name.
    def part(side: CompareSide) -> str:
        return side.dataset if side.split is None else f"{side.dataset}\x1d{side.split}"
    names = [part(as_side(a)), "\x1e", part(as_side(b))]
    return doc_key(space, *names) if kind == ITEM_KIND else doc_key(space, *names, "\x1c", kind)


def kind_filter(side: CompareSide, kind: str) -> Filter | None:
    """The side's filter narrowed to the points compared: None / the split filter for items (the
    selection's default rule), objects_only(...) for detection objects."""
    if kind not in (ITEM_KIND, OBJECT_KIND):
        raise ValueError(f"kind must be {ITEM_KIND!r} or {OBJECT_KIND!r}, got {kind!r}")
    return side.filter() if kind == ITEM_KIND else objects_only(side.filter())
