"""Hostile strings stay inert in a real browser: a store whose labels, predictions, split values,
metadata, keys, names and a collection description are Markdown, HTML, LaTeX and Streamlit
directives is shown on every page; no injected image, link, style, emphasis or formula appears,
no request leaves for the attacker's host, and the strings show as typed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.app import hostile
from tests.browser.conftest import Server, open_app, wait_idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stPlotlyChart"]'

# What a rendered hostile string would have produced, anywhere in the app (outerHTML of each).
_PROBE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const all = s => Array.from(app.querySelectorAll(s));
  const attr = (e, a) => e.getAttribute(a) || '';
  const injected = ['html', 'bold', 'it', 'colour', 'meta', 'desc', 'mkey', 'click', 'img'];
  const html = es => es.map(e => e.outerHTML.slice(0, 200));
  return {
    evil_images: html(all('img, image').filter(e => /evil/.test(attr(e, 'src') + attr(e, 'href')))),
    // a heading's own "#slug" anchor may spell the text; any other link must not exist
    links: html(all('a').filter(e => !attr(e, 'href').startsWith('#')
                                     && /evil|javascript:/i.test(attr(e, 'href') + attr(e, 'xlink:href')))),
    svg_links: html(all('svg a')),
    katex: html(all('.katex, .katex-display, math')),
    directives: html(all('.stMarkdownColoredText, .stMarkdownColoredBackground')),
    red: html(all('[style*="color: red"], [style*="color:red"], [style*="fill:red"], [style*="fill: red"]')),
    emphasis: html(all('b, strong, em, i, del').filter(e => injected.includes(e.textContent.trim()))),
    exceptions: html(all('[data-testid="stException"]')),
    text: app.innerText,
  };
}"""


def _plain(text: str) -> str:
    """Visible text without the invisible word joiners ui.text.md adds, whitespace collapsed."""
    return re.sub(r"\s+", " ", text.replace("\u2060", ""))


_SHOWS = """(t) => document.querySelector('[data-testid="stApp"]').innerText
                     .replaceAll('\\u2060', '').replace(/\\s+/g, ' ').includes(t)"""


def _assert_inert(page: Any, requests: list[str], *literals: str) -> str:
    """Wait until every literal shows (as typed), then check nothing hostile rendered."""
    for literal in literals:
        try:
            page.wait_for_function(_SHOWS, arg=_plain(literal), timeout=30_000)
        except PlaywrightTimeout:  # the assertion below names what is missing
            break
    found = page.evaluate(_PROBE)
    text = _plain(found.pop("text"))
    assert found == {key: [] for key in found}, found
    assert not requests, requests
    missing = [s for s in literals if _plain(s) not in text]
    assert not missing, (missing, text[:3000])
    return text


@pytest.fixture(scope="module")
def hostile_server(start_server: Callable[..., Server],
                   tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A dashboard on the hostile project, with its analysis, map and collection stored."""
    from core.config import load_settings

    data_dir = tmp_path_factory.mktemp("browser-hostile") / "data"
    hostile.seed_hostile(load_settings(data_dir=data_dir))
    return start_server(data_dir)


@pytest.fixture
def watched(page: Any) -> tuple[Any, list[str]]:
    """The page, and the list of requests it tried to send to the attacker's host (blocked)."""
    requests: list[str] = []

    def block(route: Any) -> None:
        requests.append(route.request.url)
        route.abort()

    page.route(re.compile(rf".*{re.escape(hostile.EVIL)}.*"), block)
    return page, requests


def _legend(page: Any) -> list[str]:
    return [_plain(t) for t in page.locator(f"{CHART} .legendtext").all_text_contents()]


def _click_option(page: Any, label: str, option: str) -> None:
    """Choose `option` in the selectbox labelled `label` (react-aria combobox)."""
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def test_home_shows_hostile_strings_as_text(hostile_server: Server, watched: Any) -> None:
    page, requests = watched
    open_app(page, hostile_server.url)
    page.get_by_text(f"Project {hostile.PROJECT}").first.wait_for()
    _assert_inert(page, requests, hostile.PROJECT, hostile.DATASET, hostile.SPACE,
                  *hostile.LITERALS)


def _show_full_ranking(page: Any) -> None:
    """Switch on the open tab's "Show the full ranking" toggle (the other tab's is hidden)."""
    page.locator('[data-testid="stCheckbox"]:visible').filter(has_text="Show the full ranking").first.click()
    wait_idle(page)


def test_explore_map_legend_hover_problems_and_detail_are_inert(hostile_server: Server,
                                                                 watched: Any) -> None:
    page, requests = watched
    open_app(page, f"{hostile_server.url}/Explore")
    page.locator(f"{CHART} .legendtext").first.wait_for()
    legend = _legend(page)
    for label in hostile.LABELS[:-1]:
        assert _plain(label) in legend, (label, legend)
    assert max(len(t) for t in legend) <= 80  # the 5,000-character label is shortened
    assert any(t.startswith("LLLL") and t.endswith("…") for t in legend)
    _assert_inert(page, requests)
    # Hover: since issue 11 no user string reaches plotly's hover label except the (escaped,
    # shortened) trace names checked above; the item's fields come from the server and are set with
    # textContent (tests/app/test_hostile_strings.py, tests/browser/test_explore.py's hover test).

    _click_option(page, "Colour by", f"meta.{hostile.META_KEY}")
    page.locator(f"{CHART} .legendtitletext").filter(has_text=hostile.META_KEY).wait_for()
    legend = _legend(page)
    assert {_plain(v) for v in hostile.META_VALUES} <= set(legend), legend
    _assert_inert(page, requests)

    # The Problems panel (expanded: the analysis is stored): grids of labels, error clusters.
    page.get_by_role("tab", name="Likely mislabels").click()
    _show_full_ranking(page)  # the corpus is clean: no likely mislabels, the ranking on request
    _assert_inert(page, requests, "suggested_label: ")
    page.get_by_role("tab", name="Error clusters").click()
    page.get_by_text("top confusion").first.wait_for()
    _assert_inert(page, requests, f"{hostile.LABELS[0]} -> {hostile.LABELS[1]}")
    page.get_by_role("tab", name="Outliers").click()
    _show_full_ranking(page)
    page.locator('[data-testid="stButton"] button:visible').filter(has_text="Open").first.click()
    page.get_by_text("Nearest neighbours").first.wait_for()
    wait_idle(page)
    _assert_inert(page, requests)


def test_search_results_are_inert(hostile_server: Server, watched: Any) -> None:
    page, requests = watched
    open_app(page, f"{hostile_server.url}/Search")
    page.get_by_text("Pick examples").first.wait_for()
    _assert_inert(page, requests)
    page.locator('[data-testid="stButton"] button').filter(has_text="more like this").first.click()
    page.get_by_text(re.compile(r"^\d+ results$")).first.wait_for()
    wait_idle(page)
    _assert_inert(page, requests, "more like 1 example(s)")


def test_compare_of_hostile_splits_is_inert(hostile_server: Server, watched: Any) -> None:
    page, requests = watched
    open_app(page, f"{hostile_server.url}/Compare")
    page.get_by_text("Overall drift").first.wait_for(timeout=300_000)
    page.get_by_text("Quick layout").wait_for(state="detached", timeout=300_000)
    wait_idle(page)
    page.locator(f"{CHART} .legendtext").first.wait_for()
    legend = " ".join(_legend(page))
    for split in hostile.SPLITS:
        assert _plain(split) in legend, legend
    _assert_inert(page, requests, *hostile.SPLITS, "Domain classifier AUC")


def test_collection_with_hostile_description_is_inert(hostile_server: Server,
                                                      watched: Any) -> None:
    page, requests = watched
    open_app(page, f"{hostile_server.url}/Collections")
    page.get_by_text(f"{hostile.COLLECTION} · 12 items").first.wait_for()
    _assert_inert(page, requests, hostile.DESCRIPTION, hostile.COLLECTION)
