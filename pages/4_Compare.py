"""Compare: how a dataset or split (production) differs from another (train): drift, novelty."""

from __future__ import annotations

import streamlit as st

from core.auth import Permission
from core.pipeline.compare_sides import side_problem
from ui import compare_pick, compare_view
from ui.actor import current_actor
from ui.errors import show_errors
from ui.page import nav_link, setup_page
from ui.text import md
from ui.widgets.out_of_date import out_of_date_notice

METHODS = {"UMAP": "umap", "PCA": "pca"}

ctx = setup_page("Compare", ":material/compare_arrows:")
st.title(":material/compare_arrows: Compare datasets")
if not ctx.ready:
    st.info("Nothing to compare yet: load the demo on the home page or ingest two datasets.")
    nav_link("Home.py")
    st.stop()
assert ctx.project is not None and ctx.space is not None
names = compare_pick.side_choices(ctx)
if len(names) < 2:
    st.info(f"Comparing needs two datasets with points in the space {md(ctx.space)}, or one "
            f"dataset whose items have two or more `split` values; project {md(ctx.project)} has "
            f"{len(names)} dataset(s) and no such splits. Ingest another dataset (e.g. "
            "production data) into the same project.")
    nav_link("pages/1_Ingest.py")
    st.stop()

st.caption("Where does B (e.g. production) differ from A (e.g. train)? Labels are not needed: "
           "everything below comes from the embeddings.")
a, b = compare_pick.pick_sides(names)
problem = side_problem(a, b)
if problem is not None:
    st.warning(md(problem, limit=None))
    st.stop()
kind = compare_pick.points_choice(ctx, a, b)
ma, mb = md(a), md(b)  # the side names as Markdown text (split values are free text)
controls = st.columns([1, 2, 1], vertical_alignment="bottom")
method = METHODS[controls[0].selectbox("Map projection", list(METHODS), key="compare.method")]
top_n = controls[1].slider("Most novel items shown", 6, 96, 24, step=6, key="compare.top")
may_compute = current_actor().can(Permission.ANALYSE)  # a viewer reads persisted comparisons only
recompute = may_compute and controls[2].button("Recompute", key="compare.recompute", icon=":material/refresh:", width="stretch",
                               help="Compute again from the stored vectors (the result is "
                                    "otherwise reused until the data changes)")

with show_errors(stop=True):
    result = compare_view.run(ctx, a, b, force=recompute, kind=kind)
    if result.stale and out_of_date_notice("this comparison's results", key="compare.refresh"):
        compare_view.run(ctx, a, b, refresh=True, kind=kind)
        st.rerun()
    payloads = compare_pick.side_payloads(ctx, a, b, kind)
points = compare_view.noun(result)  # "items", or "objects" (detection boxes, shown as crops)

st.subheader("Overall drift")
compare_view.drift_section(result)

top = compare_view.with_boxes(result.novelty.head(top_n), payloads)
quick = False
map_col, labels_col = st.columns([3, 2], gap="medium")
with map_col:
    with show_errors():
        joint, quick = compare_view.load_joint_map(ctx, a, b, method, kind)
        label = "Quick layout (PCA) — computing UMAP…" if quick else method.upper()
        compare_view.joint_map(joint, payloads, result, top.index.tolist(),
                               f"{label} of {a} + {b} · {ctx.space}")
    fit_slot = st.empty()
with labels_col:
    st.markdown("**Label distribution**")
    compare_view.labels_section(result)
    duplicates = int(result.summary.get("duplicates_of_a", 0))
    if duplicates:
        threshold = float(result.params.get("duplicate_threshold", 0))
        st.caption(f"Near-copies of a {ma} {points[:-1]} (cosine ≥ {threshold:.2f}): {duplicates:,} {mb} "
                   f"{points}. Possible leakage if they are evaluated as unseen data.")

compare_view.lasso_section(result, payloads)

st.subheader(f"{mb} {points} unlike anything in {ma}")
st.caption(f"Ranked by novelty: distance to the nearest {ma} {points}, relative to how far {ma}'s own "
           f"{points} are from each other (1 = typical, 2 = twice as far). **Open** shows one "
           f"next to its nearest {ma} {points[:-1]}.")
compare_view.novelty_section(ctx, result, top, payloads)

st.subheader("Regions where the two differ")
st.caption(f"Clusters of {ma} and {mb} together; a region's share of {mb} is compared with {mb}'s "
           "share overall (binomial test).")
compare_view.regions_section(result, payloads)

with fit_slot.container(), show_errors():
    # The quick layout is on screen: fit the real map now (a background job), then show it.
    compare_view.fit_joint_map(ctx, a, b, method, kind, quick=quick)
