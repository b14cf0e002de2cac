"""The dashboard's heavy work as jobs: map fits, analyses, comparisons, scorecards; each keyed by what it depends on."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.auth import Actor, Permission
from core.config import Settings
from core.filters import Filter
from core.jobs.job import Job, Work
from core.jobs.registry import JobRegistry, jobs
from core.store.base import VectorStore
from core.types import ITEM_KIND, Item

if TYPE_CHECKING:
    from core.pipeline.ingest_job import (
        DetectionSource,
        LayersSource,
        ModelSource,
        ObjectVectorsSource,
        VectorSource,
    )

    IngestSource = ModelSource | LayersSource | VectorSource | DetectionSource | ObjectVectorsSource

# get_map's progress(step, 4) in words (core.pipeline.maps: read, fit, place, save).
MAP_STEPS = ("reading the vectors", "fitting the layout", "placing new points", "saving the map", "saving the map")


@dataclass(frozen=True)
class JobSpec:
    """What to run, for whom, and the key that makes two asks for it the same job."""

    key: Hashable
    kind: str
    title: str
    project: str | None
    actor: Actor
    fn: Work
    own_thread: bool = False  # see JobRegistry.submit
    cancellable: bool = True
    store: str | None = None  # VectorStore.describe() of the store it works on

    def submit(self, registry: JobRegistry | None = None) -> Job:
        """Run it (or join the job already running it) in `registry` (default: this process's)."""
        return (registry or jobs()).submit(self.key, self.kind, self.title, self.actor, self.fn,
                                           project=self.project, store=self.store, own_thread=self.own_thread,
                                           cancellable=self.cancellable)


def _data_key(store: VectorStore, project: str, space: str, actor: Actor) -> tuple[Hashable, ...]:
    # The space's revision changes on every write to its points (labels included), from any process:
    # a new ingest or relabel gives a new key, while a tag written elsewhere in the project does not
    # split two users' asks for the same map. Whether the result is persisted (the actor may ANALYSE)
    # is part of it: a viewer's unsaved map is no answer for an editor who expects it saved.
    return (store.describe(), project, space, store.revision(project, space), actor.can(Permission.ANALYSE))


def map_fit(store: VectorStore, project: str, space: str, datasets: Sequence[str], *, actor: Actor,
            method: str = "umap",
            params: dict[str, Any] | None = None, flt: Filter | None = None, refit: bool = False,
            cache_dir: Path | None = None) -> JobSpec:
    """core.pipeline.maps.get_map as a job. It persists the map (pages read it through their caches), so the
    job keeps only {"points", "fitted"} as its result, not a second copy of a 1M-point MapResult."""
    from core.pipeline.maps import get_map

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        result = get_map(store, project, space, list(datasets), actor=actor, method=method, params=params,
                         flt=flt, refit=refit, cache_dir=cache_dir,
                         progress=lambda d, t: progress(d, t, MAP_STEPS[min(d, 4)]),
                         fit_progress=lambda d, t: progress(d, t, "fitting the layout (%)"))
        return {"points": len(result.ids), "fitted": result.n_fitted}

    key = ("map", *_data_key(store, project, space, actor), tuple(datasets), method, repr(params), repr(flt), refit)
    what = "Refitting" if refit else "Fitting"
    return JobSpec(key, "map", f"{what} the {method.upper()} map of {space} · {', '.join(datasets) or 'all'}",
                   project, actor, work, store=store.describe())


def analysis(store: VectorStore, project: str, space: str, datasets: Sequence[str], *, actor: Actor,
             params: dict[str, Any] | None = None, force: bool = False, cache_dir: Path | None = None) -> JobSpec:
    """core.pipeline.analyse.run_analysis as a job (persisted; the result is the AnalysisResult)."""
    from core.pipeline.analyse import run_analysis

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        return run_analysis(store, project, space, list(datasets), actor=actor, params=params, force=force,
                            cache_dir=cache_dir,
                            progress=lambda d, t: progress(d, t, "finding problems"))

    key = ("analysis", *_data_key(store, project, space, actor), tuple(datasets), repr(params), force)
    return JobSpec(key, "analysis", f"Finding problems in {space} · {', '.join(datasets) or 'all'}", project,
                   actor, work, store=store.describe())


def object_analysis(store: VectorStore, project: str, space: str, datasets: Sequence[str], *, actor: Actor,
                    params: dict[str, Any] | None = None, cache_dir: Path | None = None) -> JobSpec:
    """core.pipeline.analyse_objects.run_object_analysis as a job (persisted; the result is the ObjectAnalysis)."""
    from core.pipeline.analyse_objects import run_object_analysis

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        return run_object_analysis(store, project, space, list(datasets), actor=actor, params=params,
                                   cache_dir=cache_dir, progress=lambda d, t: progress(d, t, "analysing the objects"))

    key = ("object-analysis", *_data_key(store, project, space, actor), tuple(datasets), repr(params))
    return JobSpec(key, "analysis", f"Finding problems in the objects of {space} · {', '.join(datasets) or 'all'}",
                   project, actor, work, store=store.describe())


def comparison(store: VectorStore, project: str, space: str, side_a: Any, side_b: Any, *, actor: Actor,
               params: dict[str, Any] | None = None, force: bool = False, cache_dir: Path | None = None,
               kind: str = ITEM_KIND) -> JobSpec:
    """core.pipeline.compare.run_compare as a job (persisted; the result is the CompareResult).
    side_a / side_b: dataset names or CompareSides."""
    from core.pipeline.compare import run_compare

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        return run_compare(store, project, space, side_a, side_b, actor=actor, params=params, force=force,
                           cache_dir=cache_dir,
                           kind=kind, progress=lambda d, t: progress(d, t, "comparing"))

    key = ("compare", *_data_key(store, project, space, actor), str(side_a), str(side_b), repr(params), force, kind)
    return JobSpec(key, "compare", f"Comparing {side_b} with {side_a} in {space}", project, actor, work,
                   store=store.describe())


def scorecard(store: VectorStore, project: str, datasets: Sequence[str], *, actor: Actor, sample: int,
              force: bool = False, cache_dir: Path | None = None, payload_cache: Path | None = None) -> JobSpec:
    """core.pipeline.evaluate.evaluate_spaces (every space of the project) as a job, with progress per
    space and the space being scored in words (persisted rows; the result is the Scorecard)."""
    from core.pipeline.evaluate import evaluate_spaces
    from core.pipeline.map_doc import MAP_KIND

    spaces = [s.name for s in store.list_spaces(project)]

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        def each(done: int, total: int) -> None:
            progress(done, total, f"scoring {spaces[done]}" if done < min(total, len(spaces)) else "saving")

        return evaluate_spaces(store, project, None, list(datasets), actor=actor, sample=sample, force=force,
                               cache_dir=cache_dir, payload_cache=payload_cache, progress=each)

    # Every space's revision and the persisted maps' (trustworthiness scores the map): not the project's
    # revision, which the job's own rows move, so a second ask while it runs joins it.
    key = ("scorecard", store.describe(), project, tuple((s, store.revision(project, s)) for s in spaces),
           store.document_revision(project, MAP_KIND), tuple(datasets), sample, force, actor.can(Permission.ANALYSE))
    return JobSpec(key, "evaluate", f"Scoring the spaces of {project} · {', '.join(datasets) or 'all'}", project,
                   actor, work, store=store.describe())


def calibration(store: VectorStore, project: str, space: str, ids: Sequence[str], *, actor: Actor,
                cache_dir: Path | None = None) -> JobSpec:
    """core.search.calibrate over the space's items (its sample drawn from ids) as a job: Search's "no
    close match" check. Keyed on the space's revision only (what it measures; its on-disk cache is
    too). No progress inside, so not cancellable; the result is the Calibration."""
    from core.filters import items_only
    from core.search.calibration import calibrate

    pool = list(ids)  # a copy: the page's frame may change under a running job

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        progress(0, 0, "measuring how close neighbours are")
        return calibrate(store, project, space, pool, flt=items_only(), cache_dir=cache_dir)

    key = ("calibration", store.describe(), project, space, store.revision(project, space))
    return JobSpec(key, "calibration", f"Measuring how close neighbours are in {project}/{space}", project,
                   actor, work, cancellable=False, store=store.describe())


def ingest(store: VectorStore, project: str, dataset: str, items: Sequence[Item], source: IngestSource, *,
           actor: Actor, settings: Settings, registry: JobRegistry | None = None) -> JobSpec:
    """core.pipeline.ingest_job.run_ingest as a job (the dashboard's ingest), then the background index
    build of each large space it stored into (core.pipeline.indexing); the result is the IngestOutcome.
    Every ask is its own job: two ingests are never merged. registry: where the index builds go (default:
    this process's)."""
    import uuid
    from dataclasses import replace

    from core.pipeline.indexing import start_index_build
    from core.pipeline.ingest_job import run_ingest

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        outcome = run_ingest(store, project, dataset, items, source, actor=actor, settings=settings,
                             progress=lambda d, t: progress(d, t, "embedding and storing"),
                             phase=lambda label: progress(0, 0, label), build_index=False)
        # Started here, so the page that shows this outcome finds the build (indexing.index_build); the
        # job that follows it (a job of its own, listed for everyone) joins the same build.
        since = time.monotonic()
        building = [r.space for r in outcome.all_reports()
                    if r.stored and start_index_build(store, project, r.space) is not None]
        for space in building:
            index_build(store, project, space, actor=actor, since=since).submit(registry)
        return replace(outcome, index_built=False, index_building=True) if building else outcome

    count = f" ({len(items):,} items)" if items else ""
    return JobSpec(("ingest", uuid.uuid4().hex), "ingest", f"Ingesting {project}/{dataset}{count}", project,
                   actor, work, store=store.describe())


def index_build(store: VectorStore, project: str, space: str, *, actor: Actor, since: float | None = None) -> JobSpec:
    """core.pipeline.indexing's background build of a large space's search index as a job: the build runs
    where start_index_build runs it (Edge: a child process on a copy, so searches go on, exact) and the job
    follows it with its elapsed time (no fraction is known): the build started at or after `since`
    (time.monotonic(); None: now), else a new one. On a thread of its own (it mostly waits), not cancellable
    (a build cannot stop half-way). The result: True when built, False when not needed or discarded (the
    space changed meanwhile); the build's error is the job's."""
    from core.pipeline import indexing

    since = time.monotonic() if since is None else since

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        build = indexing.index_build(store, project, space)
        if build is None or build.started < since:  # none started for this ask (a finished one is not rerun)
            build = indexing.start_index_build(store, project, space)
        if build is None:
            return False
        while not build.done.wait(1.0):
            progress(0, 0, f"building the search index · {build.elapsed_s:,.0f} s")
        if build.error is not None:
            raise build.error
        return not build.discarded

    return JobSpec(("index", *_data_key(store, project, space, actor)), "index",
                   f"Building the search index of {project}/{space}", project, actor, work,
                   own_thread=True, cancellable=False, store=store.describe())
