"""Review: step through a ranked list of items one at a time, with actions on keys (a k l t s b)."""

from __future__ import annotations

import streamlit as st

from ui import review_view
from ui.errors import show_errors
from ui.page import require_datasets, setup_page
from ui.review_actions import action_bar, legend_keys
from ui.text import md
from ui.widgets.curation import scope
from ui.widgets.problems import current_analysis

ctx = setup_page("Review", ":material/fact_check:")
st.title(":material/fact_check: Review")
require_datasets(ctx, "Nothing to review yet: load the demo on the home page or ingest a dataset.")
sc = scope(ctx)
assert sc is not None

queue = review_view.get_queue()
with st.expander("Queue", expanded=queue is None), show_errors(stop=True):
    analysis = current_analysis(ctx)
    picked = review_view.source_picker(sc, analysis)
    skip = st.checkbox("Leave out items already reviewed or relabeled", value=True, key="review.skip_reviewed",
                       help="Items marked reviewed, or whose label was changed (accepted suggestion, set label)")
    if st.button("Start", key="review.start", type="primary", icon=":material/play_arrow:",
                 disabled=picked is None) and picked is not None:
        name, make = picked
        queue = review_view.start_queue(sc, name, make(), analysis, skip_reviewed=skip)
        st.rerun()

if queue is None:
    st.caption("Choose what to review and press **Start**. Each item shows large with its label, the "
               "suggested label and its scores explained, and its nearest neighbours; act with one key.")
    st.stop()
st.caption(" · ".join(f"**{k.lower()}** {md(label)}" for k, label, _ in legend_keys()))
total = len(queue.ids)
if total == 0:
    st.info(f"Nothing to review in {md(queue.source)}.")
    st.stop()
st.progress(min(queue.pos, total) / total,
            text=f"{min(queue.pos + 1, total):,} of {total:,} · {md(queue.source)} · {len(queue.done):,} done")
point_id = queue.current
if point_id is None:
    counts: dict[str, int] = {}
    for what in queue.done.values():
        counts[what] = counts.get(what, 0) + 1
    st.success(f"Done: {total:,} items seen"
               + "".join(f" · {n:,} {md(what)}" for what, n in sorted(counts.items())), icon=":material/check_circle:")
    if st.button("Back to the last item", key="review.last", shortcut="B"):
        queue.pos = total - 1
        st.rerun()
    st.stop()

with show_errors(stop=True):
    payload, hits = review_view.item_view(sc, point_id)
if payload is None:
    st.warning(f"Item {md(point_id)} is no longer in the space {md(sc.space)}.")
    payload = {}
row = queue.scores.loc[point_id] if point_id in queue.scores.index else None
suggested = row.get("suggested_label") if row is not None else None
suggested = None if suggested is None or suggested != suggested else str(suggested)
done = queue.done.get(point_id)
if done:
    st.caption(f"Already {md(done)} in this review.")
action_bar(sc, queue, point_id, payload, suggested)
review_view.show_item(sc, payload, row, hits)
