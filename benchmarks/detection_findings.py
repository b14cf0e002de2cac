"""How well the object finders recover the detection demo's planted errors; prints one table.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/detection_findings.py              # pixels space only
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/detection_findings.py --pretrained # + EfficientNet-Lite0 crops

The demo (core.demo_detection) writes what it planted beside its COCO files: wrong-class label boxes,
missing label boxes (a prediction stands where no label is), and spurious predictions on background. Each
finder of core.pipeline.analyse_objects is scored against its kind: precision at 10, 20 and at the number
planted (p@n), and the precision / recall of the finder's own cut-off ("flagged"). The reference is the
plain kNN label disagreement of the label boxes (10 neighbours), the baseline a user could compute alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.auth import system_actor  # noqa: E402 (after the path)

PROJECT = "demo-detection"
FINDERS = {"mislabel": ("wrong_class",), "missing": ("missing_box",), "background": ("spurious",)}


def _scores(ranked: pd.DataFrame, truth: set[str]) -> dict[str, float]:
    keys = ranked["key"].tolist()
    out = {f"p@{k}": float(np.mean([key in truth for key in keys[:k]])) for k in (10, 20) if len(keys) >= k}
    out["p@n"] = float(np.mean([key in truth for key in keys[:len(truth)]])) if truth else float("nan")
    flagged = ranked[ranked["flagged"].astype(bool)]
    hits = int(flagged["key"].isin(truth).sum())
    out["flagged"] = float(len(flagged))
    out["precision"] = hits / len(flagged) if len(flagged) else float("nan")
    out["recall"] = hits / len(truth) if truth else float("nan")
    return out


def _knn_reference(store: object, space: str, truth: set[str]) -> dict[str, float]:
    """10-NN label disagreement over the label boxes (cosine), ranked high first."""
    from core.filters import Condition, Filter, objects_only
    from core.linalg import l2_normalise

    flt = objects_only(Filter(must=(Condition("source", equals="label"),)))
    ids, vectors = store.vectors(PROJECT, space, flt=flt)  # type: ignore[attr-defined]
    payloads = store.payloads(PROJECT, space, flt, fields=["key", "label"]).reindex(ids)  # type: ignore[attr-defined]
    unit = l2_normalise(vectors)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    near = np.argsort(-sims, axis=1)[:, :10]
    labels = payloads["label"].to_numpy()
    disagreement = (labels[near] != labels[:, None]).mean(axis=1)
    ranked = pd.DataFrame({"key": payloads["key"].to_numpy(), "flagged": disagreement > 0.5,
                           "score": disagreement}).sort_values("score", ascending=False, kind="stable")
    return _scores(ranked, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", action="store_true", help="also the EfficientNet-Lite0 crop space")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="det-findings-"))
    os.environ["EMBEDSCOPE_DATA_DIR"] = str(work / "data")
    from core.config import load_settings
    from core.demo_detection import detection_folder, load_detection_demo
    from core.pipeline.analyse_objects import findings_frame, run_object_analysis
    from core.store import open_store

    settings = load_settings()
    store = open_store(settings)
    load = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        load_detection_demo(store, settings, with_pretrained=args.pretrained)
        print(f"demo loaded in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        planted = json.loads((detection_folder(settings) / "planted.json").read_text())["planted"]
        rows = []
        for space in [s.name for s in store.list_spaces(PROJECT)]:
            start = time.perf_counter()
            found = findings_frame(run_object_analysis(store, PROJECT, space, force=True, actor=system_actor()))
            seconds = time.perf_counter() - start
            for finder, kinds in FINDERS.items():
                truth = {key for key, kind in planted.items() if kind in kinds}
                ranked = found[found["finder"] == finder].sort_values("rank")
                rows.append({"space": space, "finder": finder, "planted": len(truth), **_scores(ranked, truth),
                             "analysis_s": seconds})
            truth = {key for key, kind in planted.items() if kind == "wrong_class"}
            rows.append({"space": space, "finder": "kNN disagreement (reference)", "planted": len(truth),
                         **_knn_reference(store, space, truth)})
    finally:
        store.close()
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"load average (1 min) at start: {load:.1f}")


if __name__ == "__main__":
    main()
