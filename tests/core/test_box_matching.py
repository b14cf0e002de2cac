"""Box matching on hand-built images with known answers: every status, the precedence, ties, the class table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.analysis.box_matching import (
    MATCH_STATUSES,
    TOTAL_ROW,
    Match,
    class_table,
    match_image,
    match_set,
    pairwise_iou,
    status_table,
    with_total,
)
from core.datasets.detections import Box, DetObject


def lab(index: int, box: tuple[float, float, float, float], cls: str, image: str = "a.jpg") -> DetObject:
    return DetObject(image, "label", index, Box(*box), cls)


def pred(index: int, box: tuple[float, float, float, float], cls: str, score: float | None,
         image: str = "a.jpg") -> DetObject:
    return DetObject(image, "prediction", index, Box(*box), cls, score)


def statuses(matches: list[Match]) -> list[tuple[str, int, str, int | None]]:
    return [(m.source, m.index, m.status, m.partner) for m in matches]


def test_pairwise_iou_known_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 10]])
    assert pairwise_iou(a, b).round(6).tolist() == [[1.0, round(50 / 150, 6), 0.0, 0.5]]
    assert pairwise_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_true_positive_missed_and_spurious() -> None:
    out = match_image([lab(0, (0, 0, 10, 10), "cat"), lab(1, (50, 50, 60, 60), "cat")],
                      [pred(0, (1, 0, 11, 10), "cat", 0.9), pred(1, (100, 100, 110, 110), "cat", 0.8)])
    assert statuses(out) == [("label", 0, "tp", 0), ("label", 1, "missed", None),
                             ("prediction", 0, "tp", 0), ("prediction", 1, "spurious", None)]
    assert out[0].iou == pytest.approx(90 / 110)
    assert out[1].iou == 0.0 and out[3].iou == 0.0  # nearest box, no overlap


def test_misclassified_pairs_a_prediction_with_a_label_of_another_class() -> None:
    out = match_image([lab(3, (0, 0, 10, 10), "cat")], [pred(7, (0, 0, 10, 9), "dog", 0.9)])
    assert statuses(out) == [("label", 3, "misclassified", 7), ("prediction", 7, "misclassified", 3)]
    assert out[0].iou == pytest.approx(0.9)


def test_same_class_match_wins_over_misclassified_whatever_the_scores() -> None:
    # the dog prediction scores higher and overlaps more, but the cat prediction matches the cat label
    labels = [lab(0, (0, 0, 10, 10), "cat")]
    preds = [pred(0, (0, 0, 10, 10), "dog", 0.99), pred(1, (0, 0, 10, 7), "cat", 0.5)]
    out = match_image(labels, preds)
    assert statuses(out) == [("label", 0, "tp", 1), ("prediction", 0, "duplicate", 0),
                             ("prediction", 1, "tp", 0)]


def test_duplicate_is_a_second_prediction_on_a_matched_label() -> None:
    labels = [lab(0, (0, 0, 10, 10), "cat")]
    preds = [pred(0, (0, 0, 10, 8), "cat", 0.6), pred(1, (0, 0, 10, 10), "cat", 0.9)]
    out = match_image(labels, preds)
    # greedy by score: the 0.9 one matches first, the 0.6 one duplicates it
    assert statuses(out) == [("label", 0, "tp", 1), ("prediction", 0, "duplicate", 0),
                             ("prediction", 1, "tp", 0)]
    assert out[1].iou == pytest.approx(0.8)


def test_poor_localisation_between_the_floor_and_the_threshold() -> None:
    labels = [lab(0, (0, 0, 10, 10), "cat"), lab(1, (100, 0, 110, 10), "cat")]
    preds = [pred(0, (5, 0, 15, 10), "cat", 0.9),  # IoU 1/3: loose
             pred(1, (109, 0, 119, 10), "cat", 0.9)]  # IoU 10/190 ~ 0.05 < floor
    out = match_image(labels, preds)
    assert statuses(out) == [("label", 0, "poor_localisation", 0), ("label", 1, "missed", None),
                             ("prediction", 0, "poor_localisation", 0), ("prediction", 1, "spurious", None)]
    assert out[1].iou == pytest.approx(10 / 190)
    # a lower floor turns the second pair into a loose box too
    low = match_image(labels, preds, floor=0.01)
    assert [m.status for m in low] == ["poor_localisation"] * 4
    # a lower threshold turns the first pair into a true positive
    assert [m.status for m in match_image(labels, preds, iou=0.3)][0] == "tp"


def test_poor_localisation_of_another_class_is_spurious() -> None:
    out = match_image([lab(0, (0, 0, 10, 10), "cat")], [pred(0, (5, 0, 15, 10), "dog", 0.9)])
    assert [m.status for m in out] == ["missed", "spurious"]


def test_greedy_by_score_then_highest_iou() -> None:
    # two labels, two predictions; the higher-scored one takes the label it overlaps most,
    # leaving the other label to the second prediction (COCO's greedy matching)
    labels = [lab(0, (0, 0, 10, 10), "cat"), lab(1, (4, 0, 14, 10), "cat")]
    preds = [pred(0, (0, 0, 10, 10), "cat", 0.5), pred(1, (3, 0, 13, 10), "cat", 0.9)]
    out = match_image(labels, preds)
    assert statuses(out) == [("label", 0, "tp", 0), ("label", 1, "tp", 1),
                             ("prediction", 0, "tp", 0), ("prediction", 1, "tp", 1)]


def test_ties_keep_input_order() -> None:
    labels = [lab(0, (0, 0, 10, 10), "cat")]
    # equal scores: the first prediction in input order matches; scoreless predictions come last
    out = match_image(labels, [pred(5, (0, 0, 10, 10), "cat", 0.7), pred(6, (0, 0, 10, 10), "cat", 0.7)])
    assert [m.status for m in out] == ["tp", "tp", "duplicate"] and out[0].partner == 5
    out = match_image(labels, [pred(0, (0, 0, 10, 10), "cat", None), pred(1, (0, 0, 10, 10), "cat", 0.1)])
    assert out[0].partner == 1 and out[1].status == "duplicate"
    # equal IoU with two labels: the first label is taken
    two = [lab(0, (0, 0, 10, 10), "cat"), lab(1, (10, 0, 20, 10), "cat")]
    out = match_image(two, [pred(0, (5, 0, 15, 10), "cat", 0.9)], iou=0.3)
    assert statuses(out) == [("label", 0, "tp", 0), ("label", 1, "missed", None), ("prediction", 0, "tp", 0)]


def test_empty_sides() -> None:
    assert statuses(match_image([lab(0, (0, 0, 5, 5), "cat")], [])) == [("label", 0, "missed", None)]
    only = match_image([], [pred(0, (0, 0, 5, 5), "cat", 0.3)])
    assert statuses(only) == [("prediction", 0, "spurious", None)] and only[0].iou is None
    assert match_image([], []) == []


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="iou"):
        match_image([], [], iou=0.0)
    with pytest.raises(ValueError, match="floor"):
        match_image([], [], iou=0.5, floor=0.5)
    with pytest.raises(ValueError, match="source"):
        match_set([DetObject("a", "guess", 0, Box(0, 0, 1, 1), "cat")])
    with pytest.raises(ValueError, match="twice"):
        match_set([lab(0, (0, 0, 1, 1), "cat"), lab(0, (0, 0, 2, 2), "cat")])


def _scene() -> list[DetObject]:
    """Two images with every status; the hand count is in test_class_table_matches_a_hand_count."""
    return [
        # image a: cat tp, dog label found as cat (misclassified), a duplicate cat, a spurious dog
        lab(0, (0, 0, 10, 10), "cat"), lab(1, (50, 0, 60, 10), "dog"),
        pred(0, (0, 0, 10, 10), "cat", 0.9), pred(1, (50, 0, 60, 10), "cat", 0.8),
        pred(2, (0, 0, 10, 9), "cat", 0.7), pred(3, (200, 200, 210, 210), "dog", 0.6),
        # image b: a loose cat box, a missed dog, a dog tp
        lab(0, (0, 0, 10, 10), "cat", "b.jpg"), lab(1, (50, 0, 60, 10), "dog", "b.jpg"),
        lab(2, (100, 0, 110, 10), "dog", "b.jpg"),
        pred(0, (5, 0, 15, 10), "cat", 0.9, "b.jpg"), pred(1, (100, 0, 110, 10), "dog", 0.5, "b.jpg"),
    ]


def test_match_set_keys_every_object_by_image_source_and_index() -> None:
    objects = _scene()
    found = match_set(objects)
    assert len(found) == len(objects)
    assert {k: m.status for k, m in found.items()} == {
        ("a.jpg", "label", 0): "tp", ("a.jpg", "label", 1): "misclassified",
        ("a.jpg", "prediction", 0): "tp", ("a.jpg", "prediction", 1): "misclassified",
        ("a.jpg", "prediction", 2): "duplicate", ("a.jpg", "prediction", 3): "spurious",
        ("b.jpg", "label", 0): "poor_localisation", ("b.jpg", "label", 1): "missed",
        ("b.jpg", "label", 2): "tp", ("b.jpg", "prediction", 0): "poor_localisation",
        ("b.jpg", "prediction", 1): "tp"}
    assert {m.status for m in found.values()} == set(MATCH_STATUSES)


def test_class_table_matches_a_hand_count() -> None:
    objects = _scene()
    table = class_table(objects, match_set(objects)).set_index("class")
    # cat: labels a0 b0; predictions a0 (tp), a1 (on the dog label), a2 (duplicate), b0 (loose)
    assert table.loc["cat"].drop(["precision", "recall"]).to_dict() == {
        "labels": 2, "predictions": 4, "tp": 1, "misclassified": 0, "misclassified_predictions": 1,
        "poor_localisation": 1, "missed": 0, "spurious": 0, "duplicate": 1}
    # dog: labels a1 (found as cat), b1 (missed), b2 (tp); predictions a3 (spurious), b1 (tp)
    assert table.loc["dog"].drop(["precision", "recall"]).to_dict() == {
        "labels": 3, "predictions": 2, "tp": 1, "misclassified": 1, "misclassified_predictions": 0,
        "poor_localisation": 0, "missed": 1, "spurious": 1, "duplicate": 0}
    assert table.loc["cat", "precision"] == pytest.approx(1 / 4) and table.loc["cat", "recall"] == 0.5
    assert table.loc["dog", "precision"] == 0.5 and table.loc["dog", "recall"] == pytest.approx(1 / 3)
    for _, row in table.iterrows():  # every box is counted once
        assert row["labels"] == row["tp"] + row["misclassified"] + row["poor_localisation"] + row["missed"]
        assert row["predictions"] == (row["tp"] + row["misclassified_predictions"] + row["poor_localisation"]
                                      + row["spurious"] + row["duplicate"])
    total = with_total(table.reset_index()).set_index("class").loc[TOTAL_ROW]
    assert total["labels"] == 5 and total["predictions"] == 6 and total["recall"] == pytest.approx(2 / 5)


def test_status_table_without_predictions_or_labels() -> None:
    table = status_table(["cat", "cat", "dog"], ["label", "label", "prediction"], ["missed", "missed", "spurious"])
    assert table.set_index("class")["recall"].isna().tolist() == [False, True]
    assert table.set_index("class")["precision"].isna().tolist() == [True, False]
    assert isinstance(table, pd.DataFrame) and list(table.columns)[-2:] == ["precision", "recall"]
