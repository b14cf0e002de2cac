"""setup_page(): the one call at the top of every page — config, logging, warm-up, store, sidebar."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from core.auth import Permission
from core.config import Settings
from core.errors import CoreError, StoreLockedError, StoreOutdatedError
from core.store.base import VectorStore
from core.types import DatasetInfo, SpaceInfo
from ui import downloads, jobs_view, resources, state, view_state
from ui.actor import current_actor
from ui.signin import require_signin
from ui.text import md

log = logging.getLogger(__name__)

_once_lock = threading.Lock()
_logging_configured = False
# Set to True to skip the background UMAP warm-up (tests do, to keep the CPU for themselves).
warmup_started = False

_W_PROJECT = "_w.project"
_W_DATASETS = "_w.datasets"
_W_SPACE = "_w.space"


@dataclass(frozen=True)
class PageContext:
    """What a page needs: settings, the store and the sidebar's choices (None / [] when empty)."""

    settings: Settings
    store: VectorStore
    project: str | None
    datasets: list[str]
    space: str | None
    space_info: SpaceInfo | None
    all_datasets: list[DatasetInfo] = field(default_factory=list)
    page: str | None = None  # this page's script (PAGES' path, e.g. "pages/2_Explore.py")

    @property
    def ready(self) -> bool:
        """True when a project and a space are chosen (the store is not empty)."""
        return self.project is not None and self.space_info is not None


def _configure_logging(level: str) -> None:
    global _logging_configured
    with _once_lock:
        if _logging_configured:
            return
        from core.logging_setup import configure_logging

        configure_logging(level)
        _logging_configured = True


def _start_warmup(settings: Settings) -> None:
    """Compile UMAP's numba code once per server in the background, so the first map is fast."""
    global warmup_started
    with _once_lock:
        if warmup_started:
            return
        warmup_started = True
    from core.warmup import start_warm_up

    start_warm_up(settings.cache_dir / "numba")


def _connection_error(e: CoreError) -> None:
    """Show why the store cannot be used and a retry button, then end this run."""
    if isinstance(e, StoreLockedError):
        st.warning(md(str(e), limit=None), icon=":material/lock:")
        st.caption("Another process (probably a CLI ingest) holds the embedded store. Retry when it "
                   "has finished, or run the dashboard against a Qdrant server.")
    else:
        st.error(f"**The store is unavailable.** {md(str(e), limit=None)}", icon=":material/warning:")
        st.caption("If Qdrant is still starting, wait a moment and retry. Check "
                   "EMBEDSCOPE_QDRANT_URL / EMBEDSCOPE_QDRANT_API_KEY otherwise.")
    if st.button("Retry", key="_retry_store", type="primary"):
        resources.release_store()
        st.rerun()
    st.stop()


def _offer_migrate(e: StoreOutdatedError, settings: Settings) -> None:
    """The store was written by an older layout: say so and offer the migration, then end this run."""
    st.warning(md(str(e), limit=None), icon=":material/upgrade:")
    st.caption("Migrating upgrades the store in place (the same step as `embedscope migrate`); "
               "points, maps and collections are kept.")
    actor = current_actor()
    if not actor.can(Permission.MIGRATE):  # core refuses too: say who may, instead of a button that fails
        st.info(f"Only an admin can migrate the store; you are {md(actor.name, limit=None)} ({actor.role.value}).")
        st.stop()
    if st.button("Migrate", key="_migrate_store", type="primary"):
        from core.store import open_store
        from core.store.migrate import migrate

        try:
            with st.spinner("Migrating the store..."):
                store = open_store(settings, check_schema=False)
                try:
                    report = migrate(store, actor=actor)
                finally:
                    store.close()
        except CoreError as err:
            st.error(f"**The migration failed.** {md(str(err), limit=None)}", icon=":material/warning:")
            st.stop()
        log.info("%s (%d change(s))", report.summary(), len(report.changes))
        st.toast(report.summary())
        resources.release_store()
        st.rerun()
    st.stop()


def _open() -> tuple[Settings, VectorStore, list[str]]:
    try:
        settings = resources.get_settings()
    except CoreError as e:  # load_settings names each bad EMBEDSCOPE_* setting
        st.error(md(str(e), limit=None), icon=":material/warning:")
        st.stop()
    _configure_logging(settings.log_level)
    try:
        store = resources.get_store()
        projects = store.list_projects()
    except StoreOutdatedError as e:
        resources.release_store()
        _offer_migrate(e, settings)
    except CoreError as e:
        # A server store may open lazily and fail on first use: forget it so retry reconnects.
        resources.release_store()
        _connection_error(e)
    return settings, store, projects


def _persisted_select(label: str, options: list[str], widget_key: str, current: str | None,
                      on_change: Callable[[], None],
                      fmt: Callable[[Any], str] = str) -> str | None:
    """A sidebar selectbox whose value lives in a persistent key (survives page switches)."""
    if not options:
        return None
    st.session_state[widget_key] = current if current in options else options[0]
    return st.sidebar.selectbox(label, options, key=widget_key, on_change=on_change,
                                format_func=fmt)


def _on_project() -> None:
    state.set_project(st.session_state.get(_W_PROJECT))
    state.set_datasets([])
    state.set_space(None)
    state.clear_point_state()


def _on_datasets() -> None:
    state.set_datasets(list(st.session_state.get(_W_DATASETS) or []))


def _on_space() -> None:
    state.set_space(st.session_state.get(_W_SPACE))


def _space_label(space: SpaceInfo) -> str:
    model = space.model.rsplit("/", 1)[-1] if space.model else "own vectors"
    return f"{space.name} · {space.modality} · {space.dim}-d · {model}"


def _sidebar(store: VectorStore, projects: list[str]) -> tuple[
        str | None, list[str], SpaceInfo | None, list[DatasetInfo]]:
    st.sidebar.caption(f"Store: {md(store.describe(), limit=None)}")
    actor = current_actor()
    st.sidebar.caption(f":material/person: {md(actor.name, limit=None)} · {actor.role.value}")
    if not projects:
        st.sidebar.info("The store is empty. Use **Load demo** on the home page, or ingest data "
                        "on the Ingest page.")
        return None, [], None, []
    project = _persisted_select("Project", projects, _W_PROJECT, state.get_project(), _on_project)
    state.set_project(project)
    assert project is not None
    spaces = store.list_spaces(project)
    infos = store.list_datasets(project)
    by_name = {s.name: s for s in spaces}
    space_name = _persisted_select("Embedding space", list(by_name), _W_SPACE, state.get_space(),
                                   _on_space, lambda n: _space_label(by_name[n]))
    state.set_space(space_name)
    space = by_name.get(space_name) if space_name else None
    names = [d.name for d in infos]
    counts = {d.name: d.counts.get(space_name or "", max(d.counts.values(), default=0))
              for d in infos}
    chosen = [d for d in state.get_datasets() if d in names] or names
    st.session_state[_W_DATASETS] = chosen
    datasets = st.sidebar.multiselect("Datasets", names, key=_W_DATASETS, on_change=_on_datasets,
                                      format_func=lambda n: f"{n} ({counts.get(n, 0):,})")
    state.set_datasets(list(datasets))
    if space is None:
        st.sidebar.warning("This project has no embedding space yet.")
    return project, list(datasets), space, infos


APP_DIR = Path(__file__).resolve().parents[1]  # where Home.py and pages/ live
# The pages every page may link to, in sidebar order (path relative to Home.py, label, icon).
PAGES: tuple[tuple[str, str, str], ...] = (
    ("Home.py", "Home", ":material/travel_explore:"),
    ("pages/1_Ingest.py", "Ingest", ":material/upload_file:"),
    ("pages/2_Explore.py", "Explore", ":material/map:"),
    ("pages/3_Search.py", "Search", ":material/search:"),
    ("pages/4_Compare.py", "Compare", ":material/compare_arrows:"),
    ("pages/5_Collections.py", "Collections", ":material/folder_special:"),
    ("pages/6_Evaluate.py", "Evaluate", ":material/leaderboard:"),
    ("pages/7_History.py", "History", ":material/history:"),
    ("pages/8_Review.py", "Review", ":material/fact_check:"),
)


def nav_link(page: str, label: str | None = None, icon: str | None = None) -> None:
    """st.page_link to `page` (path relative to Home.py); nothing when the file does not exist, a
    plain caption when Streamlit does not know the page (a page run alone under AppTest)."""
    from streamlit.errors import StreamlitAPIException

    if not (APP_DIR / page).is_file():
        return  # a page of PAGES this deployment does not ship
    known = {p: (lbl, ic) for p, lbl, ic in PAGES}
    default_label, default_icon = known.get(page, (page, None))
    try:
        st.page_link(page, label=label or default_label, icon=icon or default_icon)
    except StreamlitAPIException:
        log.debug("page %s not registered here; showing a caption instead", page)
        st.caption(f"{label or default_label}: open it from the sidebar.")


def require_datasets(ctx: PageContext, nothing_yet: str) -> None:
    """Stop the page with a hint (and links to Home and Ingest) when the store has nothing to
    show yet, or when no dataset is chosen in the sidebar."""
    if not ctx.ready:
        st.info(nothing_yet)
        nav_link("Home.py")
        nav_link("pages/1_Ingest.py")
        st.stop()
    if not ctx.datasets:
        st.info("Choose at least one dataset in the sidebar.")
        st.stop()


def setup_page(title: str, icon: str = ":material/travel_explore:") -> PageContext:
    """Configure the page and render the shared sidebar; call it first in Home.py and pages/*.py.

    Stops the script run (after an st.error and a Retry button) when the store cannot be used.
    """
    st.set_page_config(page_title=f"{title} · embedscope", page_icon=icon, layout="wide")
    require_signin()  # sign-in on and not signed in: a sign-in page, and the run stops before any data
    settings, store, projects = _open()
    _start_warmup(settings)
    downloads.keep_generated_downloads()  # once per process: click-made downloads outlive others' reruns
    page = next((path for path, label, _ in PAGES if label == title), None)
    try:
        view_state.read_url_once(store, projects)  # a shared link, before the widgets are built
        project, datasets, space, infos = _sidebar(store, projects)
        space_name = space.name if space else None
        view_state.apply_pending(project, space_name, datasets, page)
        view_state.saved_views_panel(store, project, space_name, datasets, page)
    except CoreError as e:
        resources.release_store()
        _connection_error(e)
    if page not in view_state.SYNCED_BY_PAGE:
        view_state.sync_url(project, space_name, datasets, page)
    jobs_view.jobs_sidebar(project)  # everyone's running jobs: who, how far, cancel for owner / admin
    return PageContext(settings=settings, store=store, project=project, datasets=datasets,
                       space=space_name, space_info=space, all_datasets=infos, page=page)
