"""The detection demo's scenes as numbers: true objects, labels and predictions with planted errors.

Pure and deterministic for a seed (no pixels, no files: core.demo_detection_render draws the
scenes, core.demo_detection writes them). Every true object gets at most one planted kind, and
objects that overlap another are never planted, so each kind has one expected matching status:

    label side       wrong_class (label of another class)   -> the label box is "misclassified"
                     missing_box (no label box)             -> its prediction is "spurious"
                     loose_box (IoU 0.3-0.45 with the truth) -> "poor_localisation"
    prediction side  missed (no prediction)                 -> the label box is "missed"
                     wrong_prediction (another class)       -> the prediction is "misclassified"
                     duplicate (a second, lower-scored box) -> the extra prediction is "duplicate"
                     spurious (a box on background)         -> the prediction is "spurious"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.demo_detection_boxes import SIZE, Box, clip, free_box, iou, jitter, touch

CLASSES: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
OBJECTS_PER_SCENE = (2, 6)
OVERLAP_SCENES = 0.1  # share of scenes where one object may overlap another a little
# Planted kinds and their rates (share of the true objects; exact counts, rounded).
RATES: dict[str, float] = {
    "wrong_class": 0.05, "missing_box": 0.05, "loose_box": 0.03,
    "missed": 0.05, "wrong_prediction": 0.03, "duplicate": 0.02, "spurious": 0.05,
}
LABEL_KINDS = ("wrong_class", "missing_box", "loose_box")
LOOSE_IOU = (0.3, 0.45)  # a loose label box against the truth
LOOSE_PRED_IOU = (0.15, 0.45)  # ... and against the object's prediction (poor, yet above the matching floor)
TIGHT_IOU = 0.75  # a good prediction overlaps its truth at least this much


@dataclass(frozen=True)
class TrueObject:
    """One object drawn in a scene: digit `digit` (row of sklearn's digits) of class `cls` at `box`."""

    cls: int
    digit: int
    box: Box
    overlaps: bool  # intersects another object of its scene (never planted)


@dataclass(frozen=True)
class Annotation:
    """A label box or a prediction: class index, box, score (predictions), the true object it
    stands for (None: a spurious box) and its planted kind ("" when nothing was planted)."""

    cls: int
    box: Box
    score: float | None
    truth: int | None
    kind: str = ""


@dataclass
class Scene:
    """One scene: its background (name, square crop x, y, side) and objects, labels, predictions."""

    name: str
    background: int
    crop: tuple[int, int, int]
    objects: list[TrueObject]
    labels: list[Annotation]
    predictions: list[Annotation]


def layout_scenes(n_scenes: int, digit_labels: np.ndarray, background_shapes: list[tuple[int, int]],
                  seed: int = 0) -> list[Scene]:
    """n_scenes scenes with 2-6 true objects each, every label and prediction planted as RATES say.
    digit_labels: (n,) int class of each sklearn digit; background_shapes: (height, width) of each photo."""
    rng = np.random.default_rng(seed)
    scenes = [_layout_one(i, rng, digit_labels, background_shapes) for i in range(n_scenes)]
    total = sum(len(s.objects) for s in scenes)
    kinds, loose_candidates = _choose_kinds(scenes, total, rng)
    for s, scene in enumerate(scenes):
        scene.predictions = _predictions(scene, kinds, s, rng)
    loose = _loose_boxes(scenes, loose_candidates, round(RATES["loose_box"] * total), rng)
    for s, scene in enumerate(scenes):
        scene.labels = _labels(scene, kinds, loose, s, rng)
    _add_spurious(scenes, round(RATES["spurious"] * total), rng)
    return scenes


def _layout_one(index: int, rng: np.random.Generator, digit_labels: np.ndarray,
                background_shapes: list[tuple[int, int]]) -> Scene:
    background = int(rng.integers(len(background_shapes)))
    height, width = background_shapes[background]
    side = int(rng.integers(min(SIZE, height, width), min(height, width) + 1))
    crop = (int(rng.integers(width - side + 1)), int(rng.integers(height - side + 1)), side)
    allow_overlap = rng.random() < OVERLAP_SCENES
    objects: list[TrueObject] = []
    for _ in range(int(rng.integers(OBJECTS_PER_SCENE[0], OBJECTS_PER_SCENE[1] + 1))):
        box = free_box(rng, [o.box for o in objects], allow_overlap and len(objects) == 1)
        if box is None:
            continue
        digit = int(rng.integers(len(digit_labels)))
        objects.append(TrueObject(int(digit_labels[digit]), digit, box, False))
    overlapping = {i for i, a in enumerate(objects) for j, b in enumerate(objects) if i != j and touch(a.box, b.box)}
    objects = [TrueObject(o.cls, o.digit, o.box, i in overlapping) for i, o in enumerate(objects)]
    return Scene(f"scene-{index:04d}.png", background, crop, objects, [], [])


def _choose_kinds(scenes: list[Scene], total: int,
                  rng: np.random.Generator) -> tuple[dict[tuple[int, int], str], list[tuple[int, int]]]:
    """(scene, object) -> planted kind for exactly round(rate * total) objects per kind, and the
    candidates for loose boxes, in the order to try them (spurious boxes are added apart)."""
    eligible = [(s, o) for s, scene in enumerate(scenes) for o, obj in enumerate(scene.objects) if not obj.overlaps]
    order = [eligible[i] for i in rng.permutation(len(eligible))]
    kinds: dict[tuple[int, int], str] = {}
    for kind in ("wrong_class", "missing_box", "missed", "wrong_prediction", "duplicate"):
        for key in order[len(kinds): len(kinds) + round(RATES[kind] * total)]:
            kinds[key] = kind
    return kinds, order[len(kinds):]


def _loose_boxes(scenes: list[Scene], candidates: list[tuple[int, int]], count: int,
                 rng: np.random.Generator) -> dict[tuple[int, int], Box]:
    """(scene, object) -> loose label box for the first `count` candidates where one fits."""
    loose: dict[tuple[int, int], Box] = {}
    for s, o in candidates:
        if len(loose) == count:
            break
        box = _loose(scenes[s].objects[o].box, scenes[s], o, rng)
        if box is not None:
            loose[(s, o)] = box
    return loose


def _predictions(scene: Scene, kinds: dict[tuple[int, int], str], s: int,
                 rng: np.random.Generator) -> list[Annotation]:
    out: list[Annotation] = []
    for o, obj in enumerate(scene.objects):
        kind = kinds.get((s, o), "")
        if kind == "missed":
            continue
        box = jitter(obj.box, rng, TIGHT_IOU)
        if kind == "wrong_prediction":
            out.append(Annotation(_other_class(obj.cls, rng), box, _score(rng, 0.4, 0.9), o, kind))
            continue
        score = _score(rng, 0.6, 0.99)
        # A missing label box: the planted fact is that this prediction has no label to match.
        out.append(Annotation(obj.cls, box, score, o, "missing_box" if kind == "missing_box" else ""))
        if kind == "duplicate":
            out.append(Annotation(obj.cls, jitter(obj.box, rng, 0.6), _score(rng, 0.3, 0.9 * score), o, kind))
    return out


def _labels(scene: Scene, kinds: dict[tuple[int, int], str], loose: dict[tuple[int, int], Box], s: int,
            rng: np.random.Generator) -> list[Annotation]:
    out: list[Annotation] = []
    for o, obj in enumerate(scene.objects):
        kind = kinds.get((s, o), "")
        if kind == "missing_box":
            continue
        if kind == "wrong_class":
            out.append(Annotation(_other_class(obj.cls, rng), obj.box, None, o, kind))
            continue
        box = loose.get((s, o))
        # A missed object: the planted fact is that this label box has no prediction.
        out.append(Annotation(obj.cls, obj.box, None, o, "missed" if kind == "missed" else "") if box is None
                   else Annotation(obj.cls, box, None, o, "loose_box"))
    return out


def _loose(truth: Box, scene: Scene, o: int, rng: np.random.Generator, tries: int = 80) -> Box | None:
    """An enlarged and shifted copy of `truth`: IoU in LOOSE_IOU with it, in LOOSE_PRED_IOU with the
    object's prediction, clear of every other object's boxes; None when none fits."""
    w, h = truth[2] - truth[0], truth[3] - truth[1]
    own = [p.box for p in scene.predictions if p.truth == o]
    others = [b.box for i, b in enumerate(scene.objects) if i != o] + [p.box for p in scene.predictions if p.truth != o]
    for _ in range(tries):
        f = rng.uniform(1.3, 2.0)
        cx = (truth[0] + truth[2]) / 2 + rng.uniform(-0.35, 0.35) * w
        cy = (truth[1] + truth[3]) / 2 + rng.uniform(-0.35, 0.35) * h
        box = clip((cx - f * w / 2, cy - f * h / 2, cx + f * w / 2, cy + f * h / 2))
        if not LOOSE_IOU[0] <= iou(box, truth) <= LOOSE_IOU[1]:
            continue
        if all(LOOSE_PRED_IOU[0] <= iou(box, p) <= LOOSE_PRED_IOU[1] for p in own) and \
                all(iou(box, b) < 0.05 for b in others):
            return box
    return None


def _add_spurious(scenes: list[Scene], count: int, rng: np.random.Generator) -> None:
    """`count` predictions on background (touching no object, label or prediction), most with low
    scores, some with high ones (a detector fooled by texture)."""
    added, tries = 0, 0
    while added < count and tries < count * 20:
        tries += 1
        scene = scenes[int(rng.integers(len(scenes)))]
        taken = [o.box for o in scene.objects] + [a.box for a in scene.labels + scene.predictions]
        box = free_box(rng, taken, False, tries=10)
        if box is None:
            continue
        score = _score(rng, 0.5, 0.9) if rng.random() < 0.3 else _score(rng, 0.05, 0.45)
        scene.predictions.append(Annotation(int(rng.integers(len(CLASSES))), box, score, None, "spurious"))
        added += 1


def _other_class(cls: int, rng: np.random.Generator) -> int:
    return int((cls + rng.integers(1, len(CLASSES))) % len(CLASSES))


def _score(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 4)


def planted_counts(scenes: list[Scene]) -> dict[str, int]:
    """How many boxes of each planted kind the scenes hold."""
    counts = dict.fromkeys(RATES, 0)
    for scene in scenes:
        for a in scene.labels + scene.predictions:
            if a.kind:
                counts[a.kind] += 1
    return counts
