"""Read a detector's COCO output: the results list, or a COCO file whose annotations carry scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.datasets.images import shown
from core.errors import BadInputError

RESULTS_SHAPE = ("a COCO results file (a JSON list of {image_id, category_id, bbox, score}, or a COCO "
                 "file whose annotations have scores)")


def load_json(path: Path, kind: type | tuple[type, ...], what: str) -> Any:
    """The parsed JSON file; BadInputError naming the file when it is missing, not JSON or not `kind`."""
    try:
        with Path(path).open("r", encoding="utf-8-sig") as handle:
            doc = json.load(handle)
    except FileNotFoundError as e:
        raise BadInputError(f"{shown(path)}: file not found") from e
    except json.JSONDecodeError as e:
        raise BadInputError(f"{shown(path)}: not valid JSON (line {e.lineno}: {e.msg})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{shown(path)}: cannot read the file ({e})") from e
    if not isinstance(doc, kind):
        raise BadInputError(f"{shown(path)}: not {what}")
    return doc


def load_results(path: Path, instances: dict[str, Any]) -> list[Any]:
    """The result entries of a predictions file, with image_id and category_id in the instances file's ids.

    A results list is returned as it is. A COCO file (as tools export predictions) gives its
    annotations; when it has its own images / categories, its ids are mapped to the instances'
    through file_name / name (an id that maps to nothing is kept, and rejected later as unknown).
    """
    doc = load_json(path, (list, dict), RESULTS_SHAPE)
    if isinstance(doc, list):
        return doc
    entries = doc.get("annotations")
    if not isinstance(entries, list):
        raise BadInputError(f"{shown(path)}: not {RESULTS_SHAPE}")
    images = _by_field(instances.get("images"), "file_name", doc.get("images"))
    categories = _by_field(instances.get("categories"), "name", doc.get("categories"))
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, dict):
            entry = dict(entry)
            for field, mapping in (("image_id", images), ("category_id", categories)):
                value = entry.get(field)
                if _hashable(value) and value in mapping:
                    entry[field] = mapping[value]
        out.append(entry)
    return out


def _by_field(theirs: Any, field: str, ours: Any) -> dict[Any, Any]:
    """{id in `ours` -> id in `theirs`} for entries sharing `field`; {} when either list is absent."""
    if not isinstance(theirs, list) or not isinstance(ours, list):
        return {}
    target = {e.get(field): e.get("id") for e in theirs if isinstance(e, dict) and _hashable(e.get(field))}
    return {e.get("id"): target[e.get(field)] for e in ours
            if isinstance(e, dict) and _hashable(e.get("id")) and _hashable(e.get(field)) and e.get(field) in target}


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)
