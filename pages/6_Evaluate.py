"""Evaluate: which embedding space is best — the scorecard, per-class recall, and two linked maps."""

from __future__ import annotations

import streamlit as st

from core.pipeline.evaluate import DEFAULT_SAMPLE, MAX_SAMPLE
from ui import evaluate_view
from ui.errors import show_errors
from ui.page import require_datasets, setup_page

ctx = setup_page("Evaluate", ":material/leaderboard:")
st.title(":material/leaderboard: Evaluate")
st.caption("Which embedding space is best for these datasets? Every space is scored on the same labelled "
           "items: kNN and linear-probe accuracy, per-class recall, retrieval precision, cluster/label "
           "agreement and map trustworthiness. (CLI: `python -m core evaluate --project NAME`.)")
require_datasets(ctx, "Nothing to evaluate yet: load the demo on the home page or ingest a dataset.")
assert ctx.project is not None

top = st.columns([1, 1, 2], vertical_alignment="bottom")
sample = int(top[0].number_input("Items per space (at most)", min_value=100, max_value=MAX_SAMPLE,
                                 value=DEFAULT_SAMPLE, step=1_000, key="evaluate.sample",
                                 help="A seeded sample of the labelled items when there are more."))
compute = top[1].button("Compute scorecard", key="evaluate.compute", type="primary",
                        icon=":material/calculate:", width="stretch")
with show_errors(stop=True):
    if compute:  # a background job, shared with anyone scoring the same data; followed until it ends
        evaluate_view.start_scorecard(ctx, sample)
    evaluate_view.follow_scorecard()
    card = evaluate_view.stored(ctx, sample)
evaluate_view.scorecard_section(card)

st.subheader("Two spaces, linked")
evaluate_view.linked_maps(ctx, [s.name for s in ctx.store.list_spaces(ctx.project)])
