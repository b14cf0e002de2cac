"""The Explore map's caches (ui.resources) key on what a map shows, not on the project's revision:
a write elsewhere in the project (another space, another kind of document) rebuilds nothing, a
write to a shown dataset shows on the next read."""

from __future__ import annotations

import numpy as np

from core import collections
from core.types import SpaceInfo
from tests.actors import ADMIN
from tests.app.conftest import Seeded

SHOWN = ("train", "test")


def test_the_map_data_is_rebuilt_for_writes_to_what_it_shows_only(seeded_store: Seeded) -> None:
    from ui import resources

    project, space = seeded_store.project, seeded_store.space
    store = resources.get_store()
    data = resources.cached_map_data(project, space, SHOWN, method="pca")
    assert resources.map_ready(project, space, SHOWN) and len(data.frame) == 36
    before = store.revision(project)

    # an ingest into another space of the project, a collection saved: both move the project's token
    store.ensure_space(project, SpaceInfo("other", 4, "vector"))
    rng = np.random.default_rng(0)
    store.upsert(project, "other", [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)],
                 rng.normal(size=(5, 4)).astype(np.float32), [{"dataset": "more", "kind": "item"}] * 5)
    collections.save(store, project, "picked", seeded_store.ids["train"][:3], actor=ADMIN, space=space)
    assert store.revision(project) != before
    assert resources.cached_map_data(project, space, SHOWN, method="pca") is data  # nothing rebuilt
    assert resources.map_ready(project, space, SHOWN)

    # a label changed on a shown dataset: the same layout, the new label
    relabelled = seeded_store.ids["train"][0]
    store.set_payload(project, [relabelled], [{"label": "lynx"}])
    assert not resources.map_ready(project, space, SHOWN)  # the page draws the map's shape first
    labelled = resources.cached_map_data(project, space, SHOWN, method="pca")
    assert labelled is not data and labelled.frame.loc[relabelled, "label"] == "lynx"
    assert labelled.frame.index.equals(data.frame.index)

    # points of a shown dataset added: placed onto the map (which rewrites its document)
    new = seeded_store.ids["prod"][:2]
    vectors = store.vectors(project, space, ids=new)[1]
    store.upsert(project, space, [f"00000000-0000-4000-9000-{i:012d}" for i in range(2)], vectors,
                 [{"dataset": "train", "kind": "item", "label": "cat"}] * 2)
    grown = resources.cached_map_data(project, space, SHOWN, method="pca")
    assert len(grown.frame) == 38 and grown is not labelled
    assert resources.cached_map_data(project, space, SHOWN, method="pca") is grown  # then stable again
