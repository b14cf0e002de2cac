"""The demos' background spaces are jobs of the process registry: listed for everyone, with progress and ETA."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.auth import system_actor
from core.demo_job import DemoJob, start_job
from core.jobs import DONE, FAILED, Job, jobs
from core.pipeline.rejects import IngestReport
from core.store.base import VectorStore
from core.types import Progress
from tests.core.conftest import make_store

WAIT_S = 30.0


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[VectorStore]:
    store = make_store("edge", tmp_path)
    yield store
    store.close()


def _listed(store: VectorStore, after: float) -> list[Job]:
    return [j for j in jobs().recent("demo", store.describe()) if j.kind == "demo" and j.submitted >= after]


def test_the_demo_job_is_listed_with_its_progress(edge: VectorStore) -> None:
    import time

    gate, batch = threading.Event(), threading.Event()

    def work(update: Progress) -> list[IngestReport]:
        update(0, 10)  # before the model is loaded: not yet a rate to list
        update(4, 10)
        batch.set()
        assert gate.wait(WAIT_S)
        update(10, 10)
        return []

    since = time.time()
    demo = start_job(edge, 10, work, what="demo", project="demo", jobs={}, lock=threading.Lock())
    try:
        assert batch.wait(WAIT_S)
        (job,) = _listed(edge, since)
        assert job.running and job.owner == system_actor().name and not job.cancellable
        assert (job.done, job.total) == (4, 10) == (demo.done, demo.total)
        assert "Load demo" in job.title and job.phase == demo.phase
    finally:
        gate.set()
    assert demo.finished.wait(WAIT_S) and job.wait(WAIT_S) and job.state == DONE and demo.error is None
    assert (job.done, job.total) == (10, 10)


def test_a_failed_demo_job_fails_in_the_list_too_and_a_new_load_is_a_new_job(edge: VectorStore) -> None:
    import time

    def broken(update: Progress) -> list[IngestReport]:
        raise OSError("no weights")

    since = time.time()
    registry: dict[str, DemoJob] = {}
    first = start_job(edge, 5, broken, what="demo", project="demo", jobs=registry, lock=threading.Lock())
    assert first.finished.wait(WAIT_S) and isinstance(first.error, OSError)
    second = start_job(edge, 5, lambda update: [], what="demo", project="demo", jobs=registry,
                       lock=threading.Lock())
    assert second is not first and second.finished.wait(WAIT_S) and second.error is None
    listed = _listed(edge, since)
    for job in listed:
        assert job.wait(WAIT_S)
    assert sorted(j.state for j in listed) == sorted([DONE, FAILED])


def test_work_run_by_its_caller_is_listed_while_it_runs_and_ends_done_or_failed() -> None:
    from core.auth import Actor, Role
    from core.jobs import JobRegistry

    registry, alice = JobRegistry(1), Actor("alice@example.com", Role.EDITOR)
    with registry.running_here("demo", "Load demo: the first map", alice, project="demo") as job:
        job.progress(3, 10, "storing the spaces")
        (listed,) = registry.recent("demo")
        assert listed is job and job.running and (job.done, job.phase) == (3, "storing the spaces")
        assert not registry.may_cancel(job, alice)
    assert job.state == DONE and not job.running
    with pytest.raises(OSError, match="disk full"):
        with registry.running_here("demo", "Load demo: the first map", alice, project="demo") as failing:
            raise OSError("disk full")
    assert failing.state == FAILED and isinstance(failing.error, OSError)
    assert [j.state for j in registry.recent("demo")] == [FAILED, DONE]  # two loads, two jobs
