"""core.views: a view round-trips through URL parameters, bad links degrade with notices, and saved
views live in the store (both adapters)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import pytest

from core import views
from core.errors import BadInputError, NotFoundError
from core.ids import point_id
from core.store.base import VectorStore
from core.views import View
from tests.actors import ADMIN
from tests.core.conftest import seed_clusters

FULL = View(project="demo", space="pixels", datasets=("train", "prod"), colour="meta.camera",
            filters=(("label", ("3", "a,b & c")), ("meta.camera", ("cam0",))), unlabeled=True,
            confidence=(0.25, 0.75), item=point_id("demo", "train", "img 1.png"))


def test_a_view_round_trips_through_a_query_string() -> None:
    # Through a real query string: values with commas, spaces and '&' survive as repeated params.
    query = urlencode(views.encode(FULL), doseq=True)
    back, notices = views.decode(parse_qs(query))
    assert notices == []
    assert back == FULL


def test_the_default_view_is_an_empty_url() -> None:
    assert views.encode(View()) == {}
    assert views.decode({}) == (View(), [])


def test_bad_values_are_dropped_with_a_notice() -> None:
    view, notices = views.decode({"project": "demo", "item": "../../etc/passwd",
                                  "f.confidence": "high:low", "unknown": "x"})
    assert view == View(project="demo")
    assert len(notices) == 2 and any("item" in n for n in notices) and any("confidence" in n for n in notices)
    view, notices = views.decode({"f.confidence": "0.9:0.1"})  # low > high
    assert view.confidence is None and notices


def test_filters_resolve_against_the_facets_by_text() -> None:
    facets = {"label": ["cat", "dog"], "meta.size": [1, 2, 3], "meta.camera": ["a"], "confidence": [0.1, 0.9]}
    view = View(filters=(("label", ("dog", "unicorn")), ("meta.size", ("2",)), ("meta.camera", ("a",)),
                         ("nope", ("x",))))
    chosen, notices = views.resolve_filters(view, facets)
    assert chosen == {"label": ["dog"], "meta.size": [2]}  # the facet's own int, not "2"
    assert len(notices) == 3  # the unknown label, a second metadata field, an unknown field
    assert views.clamp_confidence(View(confidence=(0.0, 0.5)), [0.1, 0.9]) == (0.1, 0.5)
    assert views.clamp_confidence(View(confidence=(0.95, 1.0)), [0.1, 0.9]) is None


def test_saved_views_live_in_the_store(store: VectorStore) -> None:
    seed_clusters(store, project="proj")
    assert views.list_views(store, "proj") == []
    saved = views.save_view(store, "proj", "  low confidence ", View(colour="label", page="pages/2_Explore.py",
                                                                   confidence=(0.0, 0.4)), actor=ADMIN)
    assert saved == "low confidence"
    views.save_view(store, "proj", "all", View(), actor=ADMIN)
    assert views.list_views(store, "proj") == ["all", "low confidence"]
    loaded = views.load_view(store, "proj", "low confidence")
    assert (loaded.project, loaded.colour, loaded.confidence, loaded.page) == \
        ("proj", "label", (0.0, 0.4), "pages/2_Explore.py")
    assert views.delete_view(store, "proj", "all", actor=ADMIN)
    assert not views.delete_view(store, "proj", "all", actor=ADMIN)
    assert views.list_views(store, "proj") == ["low confidence"]
    with pytest.raises(NotFoundError):
        views.load_view(store, "proj", "all")
    with pytest.raises(BadInputError):
        views.save_view(store, "proj", "../x", View(), actor=ADMIN)
    with pytest.raises(NotFoundError):
        views.save_view(store, "no-such-project", "v", View(), actor=ADMIN)
