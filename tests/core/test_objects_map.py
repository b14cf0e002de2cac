"""The objects map: a persisted map of the detection objects only, next to (not instead of) the images map."""

from __future__ import annotations

from core.config import Settings
from core.filters import Condition, Filter, items_only, names_kind, objects_only
from core.pipeline.maps import get_map, has_map, selection_filter
from core.store import open_store
from tests.actors import ADMIN
from tests.object_scenes import Scenes, seed_scenes


def test_names_kind_lets_a_kind_filter_through_and_items_stay_the_default() -> None:
    assert names_kind(objects_only()) and names_kind(items_only()) and not names_kind(Filter.where(label="a"))
    assert not names_kind(None)
    assert selection_filter(["d"], objects_only()) == Filter.datasets(["d"]).and_(objects_only())
    assert selection_filter(["d"]) == items_only(Filter.datasets(["d"]))


def test_the_objects_map_holds_the_objects_and_is_persisted_apart(settings: Settings) -> None:
    scenes: Scenes = seed_scenes(settings)
    store = open_store(settings)
    try:
        images = get_map(store, scenes.project, scenes.space, None, method="pca", actor=ADMIN)
        assert not has_map(store, scenes.project, scenes.space, None, method="pca", flt=objects_only())
        objects = get_map(store, scenes.project, scenes.space, None, method="pca", flt=objects_only(), actor=ADMIN)
        assert sorted(images.ids) == sorted(scenes.images)
        assert sorted(objects.ids) == sorted(scenes.objects)
        assert has_map(store, scenes.project, scenes.space, None, method="pca", flt=objects_only())
        # Narrowed further (fit on the filtered objects only): the missed and spurious boxes alone.
        missed = get_map(store, scenes.project, scenes.space, None, method="pca", actor=ADMIN,
                         flt=objects_only(Filter(must=(Condition("match", one_of=("missed", "spurious")),))))
        assert sorted(missed.ids) == sorted(o for o, s in scenes.status.items() if s in ("missed", "spurious"))
        again = get_map(store, scenes.project, scenes.space, None, method="pca", flt=objects_only(), actor=ADMIN)
        assert not again.fitted and again.ids == objects.ids
    finally:
        store.close()
