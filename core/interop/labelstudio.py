"""Label Studio: task files with the current label as a pre-annotation, the labeling config, and reading its exports.

Formats as documented by Label Studio (read 2026-11):
- tasks and pre-annotations: https://labelstud.io/guide/predictions (a JSON list of tasks, each
  {"data": {...}, "predictions": [{"model_version", "result": [{"from_name", "to_name", "type",
  "value": {"choices": [...]}}]}]}) and https://labelstud.io/guide/tasks (optional "meta");
- exports: https://labelstud.io/guide/task_format and https://labelstud.io/guide/export (JSON:
  tasks with "annotations"[].result, "was_cancelled", "created_at"/"updated_at"; JSON-MIN: one flat
  object per task, the control's name holding the choice);
- local files: https://labelstud.io/guide/storage#Local-storage ("/data/local-files/?d=<path
  relative to LOCAL_FILES_DOCUMENT_ROOT>", which defaults to "/"; needs
  LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true);
- the server's import check (label_studio/tasks/validation.py, TaskValidator): a non-empty list of
  dicts with "data" a dict, "annotations"/"predictions" lists of dicts with a "result" list, "meta"
  a dict, and every "$variable" of the config present in data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import pandas as pd

from core.errors import BadInputError
from core.interop.rows import ID_FIELD, ImportedLabel, point_or_none, text_or_none
from core.types import DATASET, KEY, LABEL, TEXT

log = logging.getLogger(__name__)

CONTROL = "label"  # <Choices name=...>: the from_name of every result we write and read first
IMAGE = "image"  # <Image name="image" value="$image"/>
TEXT_OBJECT = "text"  # <Text name="text" value="$text"/>
MODEL_VERSION = "embedscope current label"


def labeling_config(classes: Sequence[str], *, images: bool = True, texts: bool = False) -> str:
    """The labeling config XML matching to_tasks: an Image (and/or Text) object and one Choices
    control named "label" with one <Choice> per class (values XML-escaped)."""
    if not (images or texts):
        raise ValueError("a labeling config needs images or texts")
    objects = ([f'  <Image name="{IMAGE}" value="${IMAGE}"/>'] if images else []) + (
        [f'  <Text name="{TEXT_OBJECT}" value="${TEXT_OBJECT}"/>'] if texts else [])
    target = IMAGE if images else TEXT_OBJECT
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return ("<View>\n" + "\n".join(objects) + "\n"
            f'  <Choices name="{CONTROL}" toName="{target}" choice="single" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def _result(label: str, target: str, index: int) -> dict[str, Any]:
    # A choices region; Label Studio generates region ids itself, a stable one keeps diffs small.
    return {"id": f"es{index}", "from_name": CONTROL, "to_name": target, "type": "choices",
            "value": {"choices": [label]}}


def to_tasks(items: pd.DataFrame, *, url_of: Callable[[pd.Series], str | None],
             project: str) -> tuple[list[dict[str, Any]], bool, bool]:
    """(tasks, any image, any text) for items (payloads indexed by point id, as
    core.interop.selection returns them). url_of(row) gives an item's image URL, None for an item
    without a file: that one gets its text in data.text. Each task's data and meta carry the point
    id, dataset and key (what import_labels matches by); its current label, when it has one, is
    the pre-annotation."""
    rows = []
    for pid, row in items.iterrows():
        url = url_of(row)
        rows.append((str(pid), row, url))
    images = any(url is not None for _, _, url in rows)
    texts = any(url is None for _, _, url in rows)
    target = IMAGE if images else TEXT_OBJECT
    tasks = []
    for index, (pid, row, url) in enumerate(rows):
        ref = {ID_FIELD: pid, DATASET: text_or_none(row.get(DATASET)), KEY: text_or_none(row.get(KEY))}
        data: dict[str, Any] = dict(ref)
        if images:
            data[IMAGE] = url or ""  # every task needs each $variable of the config
        if texts:
            data[TEXT_OBJECT] = text_or_none(row.get(TEXT)) or ("" if url else str(ref[KEY] or pid))
        for extra in ("prediction", "suggested_label"):
            if text_or_none(row.get(extra)) is not None:
                data[extra] = text_or_none(row.get(extra))
        task: dict[str, Any] = {"data": data, "meta": {**ref, "project": project}}
        label = text_or_none(row.get(LABEL))
        if label is not None:
            task["predictions"] = [{"model_version": MODEL_VERSION, "result": [_result(label, target, index)]}]
        tasks.append(task)
    return tasks, images, texts


def _fail(source: str, where: str, problem: str) -> BadInputError:
    return BadInputError(f"{source}: {where}: {problem}")


def _choice(result: Any, source: str, where: str) -> str | None:
    """The first choice of our control in an annotation's result (any choices control when ours
    is absent); None when nothing was chosen."""
    if not isinstance(result, list):
        raise _fail(source, where, f"'result' must be a list, got {type(result).__name__}")
    regions = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"]
    ours = [r for r in regions if r.get("from_name") == CONTROL] or regions
    for region in ours:
        value = region.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise _fail(source, where, "a choices result needs 'value': {'choices': [text, ...]}")
        if len(choices) > 1:
            log.warning("%s: %s: several choices %s, the first is taken", source, where, choices)
        if choices:
            return choices[0]
    return None


def _latest(annotations: Any, source: str, where: str) -> dict[str, Any] | None:
    """The newest annotation not cancelled (skipped), by updated_at / created_at, else list order."""
    if not isinstance(annotations, list):
        raise _fail(source, where, f"'annotations' must be a list, got {type(annotations).__name__}")
    kept = []
    for n, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise _fail(source, f"{where}, annotation {n}", "must be an object")
        if not ann.get("was_cancelled"):
            kept.append((str(ann.get("updated_at") or ann.get("created_at") or ""), n, ann))
    return max(kept, key=lambda t: (t[0], t[1]))[2] if kept else None


def _full_task(task: dict[str, Any], source: str, where: str) -> ImportedLabel:
    data = task.get("data")
    if not isinstance(data, dict):
        raise _fail(source, where, "'data' must be an object")
    meta = task["meta"] if isinstance(task.get("meta"), dict) else {}
    ref = {f: data.get(f, meta.get(f)) for f in (ID_FIELD, DATASET, KEY)}
    annotations = task.get("annotations", task.get("completions", []))  # "completions": before 1.0
    latest = _latest(annotations, source, where)
    label = _choice(latest.get("result", []), source, f"{where}, annotation") if latest else None
    return ImportedLabel(point_or_none(ref[ID_FIELD]), text_or_none(ref[DATASET]), text_or_none(ref[KEY]),
                         label, where)


def _min_task(task: dict[str, Any], where: str) -> ImportedLabel:
    # JSON-MIN: data fields at the top level, the control's name holding a string (single choice)
    # or {"choices": [...]} (several).
    value = task.get(CONTROL)
    if isinstance(value, dict):
        value = (value.get("choices") or [None])[0]
    return ImportedLabel(point_or_none(task.get(ID_FIELD)), text_or_none(task.get(DATASET)),
                         text_or_none(task.get(KEY)), text_or_none(value), where)


def parse_export(data: Any, source: str) -> list[ImportedLabel]:
    """The labels of a Label Studio export (JSON or JSON-MIN), one per task, in file order.

    BadInputError naming the file, the task and the field for anything that is not that format.
    """
    if not isinstance(data, list):
        raise BadInputError(f"{source}: a Label Studio export is a JSON list of tasks, got {type(data).__name__}")
    out = []
    for n, task in enumerate(data):
        if not isinstance(task, dict):
            raise _fail(source, f"task {n}", f"must be an object, got {type(task).__name__}")
        where = f"task {n}" + (f" (Label Studio id {task['id']})" if "id" in task else "")
        full = "data" in task or "annotations" in task or "completions" in task
        out.append(_full_task(task, source, where) if full else _min_task(task, where))
    return out
