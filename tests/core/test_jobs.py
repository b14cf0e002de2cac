"""core.jobs: shared computations by key, progress and ETA, cancel rights, errors kept, low priority."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

import core.jobs.job as job_module
from core.auth import Actor, PermissionDeniedError, Role
from core.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRegistry

ALICE = Actor("alice@example.com", Role.EDITOR)
BOB = Actor("bob@example.com", Role.VIEWER)
ADMIN = Actor("root@example.com", Role.ADMIN)
WAIT_S = 10.0


def _gated(calls: list[int], gate: threading.Event, result: Any = 42) -> Callable[..., Any]:
    """Work that counts its calls, reports 1 of 2, then waits for `gate` and returns `result`."""
    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> Any:
        calls.append(1)
        progress(1, 2, "half way")
        assert gate.wait(WAIT_S)
        progress(2, 2)
        return result
    return work


def _until_cancelled(progress: Callable[..., None], cancelled: Callable[[], bool]) -> None:
    """Work that reports progress in small batches until it is stopped (JobCancelledError)."""
    for i in range(10_000):
        progress(i, 10_000)
        threading.Event().wait(0.01)
    raise AssertionError("never cancelled")


def test_the_same_key_runs_once_and_every_asker_gets_the_result() -> None:
    calls: list[int] = []
    registry, gate = JobRegistry(2), threading.Event()
    first = registry.submit(("map", "s", 1), "map", "UMAP of train", ALICE, _gated(calls, gate))
    second = registry.submit(("map", "s", 1), "map", "UMAP of train", BOB, _gated(calls, gate))
    assert second is first and first.owner == ALICE.name
    other = registry.submit(("map", "s", 2), "map", "UMAP of test", BOB, _gated(calls, gate, result=7))
    assert other is not first
    gate.set()
    assert first.wait(WAIT_S) and other.wait(WAIT_S)
    assert len(calls) == 2 and first.state == DONE and second.result == 42 and other.result == 7
    # Done a moment ago: asking again hands back the result, without computing it again.
    assert registry.submit(("map", "s", 1), "map", "UMAP of train", BOB, _gated(calls, gate)) is first
    assert len(calls) == 2
    assert {j.id for j in registry.recent()} == {first.id, other.id}  # listed for everyone


def test_progress_phase_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_module, "MIN_RATE_S", 0.0)
    registry, reported, gate = JobRegistry(1), threading.Event(), threading.Event()

    def work(progress: Callable[..., None], cancelled: Callable[[], bool]) -> str:
        progress(0, 10, "reading vectors")
        threading.Event().wait(0.2)
        progress(4, 10)
        reported.set()
        assert gate.wait(WAIT_S)
        return "ok"

    running = registry.submit("k", "analysis", "Problems of train", ALICE, work, project="p", store="edge:/a")
    assert reported.wait(WAIT_S)
    assert running.state == RUNNING and running.phase == "reading vectors"
    assert (running.done, running.total, running.fraction) == (4, 10, 0.4)
    eta = running.eta_s()
    # 4 done in >= 0.2 s: 6 more take >= 0.3 s at that rate.
    assert eta is not None and eta >= 0.3 - 1e-6
    gate.set()
    assert running.wait(WAIT_S) and running.eta_s() is None and running.result == "ok"
    assert registry.recent(project="other") == [] and registry.recent(project="p") == [running]
    assert registry.recent(store="edge:/b") == [] and registry.recent("p", "edge:/a") == [running]


def test_the_owner_and_an_admin_may_cancel_another_viewer_may_not() -> None:
    registry = JobRegistry(2)
    mine = registry.submit("a", "map", "UMAP", ALICE, _until_cancelled)
    theirs = registry.submit("b", "map", "UMAP", ALICE, _until_cancelled)
    assert not registry.may_cancel(mine, BOB) and registry.may_cancel(mine, ADMIN)
    with pytest.raises(PermissionDeniedError, match="bob@example.com"):
        registry.cancel(mine.id, BOB)
    assert mine.running and not mine.cancel_requested
    registry.cancel(mine.id, ALICE)
    registry.cancel(theirs.id, ADMIN)
    assert mine.wait(WAIT_S) and theirs.wait(WAIT_S)
    # Cancelled is not an error: nothing to show but the state.
    assert (mine.state, mine.error, mine.cancelled_by) == (CANCELLED, None, ALICE.name)
    assert (theirs.state, theirs.cancelled_by) == (CANCELLED, ADMIN.name)
    # A cancelled job is not reused: asking again starts over.
    calls: list[int] = []
    gate = threading.Event()
    gate.set()
    again = registry.submit("a", "map", "UMAP", ALICE, _gated(calls, gate))
    assert again is not mine and again.wait(WAIT_S) and again.state == DONE and calls == [1]


def test_a_queued_job_cancelled_never_starts() -> None:
    calls: list[int] = []
    registry, gate = JobRegistry(1), threading.Event()
    busy = registry.submit("busy", "ingest", "Ingest", ALICE, _gated(calls, gate))
    queued = registry.submit("next", "ingest", "Ingest 2", ALICE, _gated(calls, gate))
    assert queued.state == QUEUED
    registry.cancel(queued.id, ALICE)
    gate.set()
    assert busy.wait(WAIT_S) and queued.wait(WAIT_S)
    assert queued.state == CANCELLED and queued.started is None and len(calls) == 1


def test_an_error_is_kept_not_raised_and_the_worker_goes_on() -> None:
    registry = JobRegistry(1)

    def broken(progress: Callable[..., None], cancelled: Callable[[], bool]) -> None:
        raise ValueError("the fit diverged")

    failed = registry.submit("x", "map", "UMAP", ALICE, broken)
    assert failed.wait(WAIT_S)
    assert failed.state == FAILED and isinstance(failed.error, ValueError) and "diverged" in str(failed.error)
    calls: list[int] = []
    gate = threading.Event()
    gate.set()
    retry = registry.submit("x", "map", "UMAP", ALICE, _gated(calls, gate))  # a failure is not reused
    assert retry is not failed and retry.wait(WAIT_S) and retry.state == DONE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_workers_run_at_a_lower_priority_than_the_pages() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    registry = JobRegistry(1, nice=max(base, 15))

    def niceness(progress: Callable[..., None], cancelled: Callable[[], bool]) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    running = registry.submit("n", "map", "UMAP", ALICE, niceness)
    assert running.wait(WAIT_S) and running.result == max(base, 15)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the calling thread is left alone


def test_a_job_on_its_own_thread_leaves_the_pool_free_and_may_refuse_to_stop() -> None:
    from core.errors import UnsupportedOperationError

    calls: list[int] = []
    registry, gate = JobRegistry(1), threading.Event()
    waiting = registry.submit("index", "index", "Index", ALICE, _gated(calls, gate), own_thread=True,
                              cancellable=False)
    quick = registry.submit("map", "map", "UMAP", ALICE, lambda progress, cancelled: "drawn")
    assert quick.wait(WAIT_S) and quick.result == "drawn" and waiting.running  # the one worker was free
    assert not registry.may_cancel(waiting, ADMIN)
    with pytest.raises(UnsupportedOperationError, match="cannot be stopped"):
        registry.cancel(waiting.id, ALICE)
    gate.set()
    assert waiting.wait(WAIT_S) and waiting.state == DONE
