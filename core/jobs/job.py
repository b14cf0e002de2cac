"""One background job: what it is, who started it, how far it got, its result or error, and its cancel flag."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from core.errors import CoreError

log = logging.getLogger(__name__)

MIN_RATE_S = 1.0  # no ETA before a phase has run this long: the first batch's rate says little

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

# What a job runs: fn(progress, cancelled) -> result. progress is a core.types.Progress (it also takes a
# phase message as a third argument); cancelled() says whether to stop between batches.
Work = Callable[[Callable[..., None], Callable[[], bool]], Any]


class JobCancelledError(CoreError):
    """The job's owner (or an admin) cancelled it; raised inside the job at its next progress call."""


@dataclass(eq=False)
class Job:
    """A unit of heavy work run by a JobRegistry worker, shared by everyone who asks for the same key.

    done / total: the current phase's progress (whatever unit its work function reports); phase: what it
    does, in words; error: the exception it failed with (the worker has nobody to raise to); result: what
    the work function returned. started / ended: wall-clock seconds (time.time()) for the job list.
    """

    key: Hashable
    kind: str
    title: str
    owner: str
    project: str | None = None
    store: str | None = None  # the store it works on (VectorStore.describe()), so lists show that store's jobs
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    done: int = 0
    total: int = 0
    phase: str = "waiting for a worker…"
    error: BaseException | None = None
    result: Any = None
    cancelled_by: str | None = None
    outcome: str | None = None  # DONE, FAILED or CANCELLED once finished
    cancellable: bool = True
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _phase_start: float = field(default_factory=time.monotonic, repr=False)
    _phase_done0: int = 0

    @property
    def state(self) -> str:
        """QUEUED, RUNNING, DONE, FAILED or CANCELLED."""
        if not self._finished.is_set() or self.outcome is None:
            return QUEUED if self.started is None else RUNNING
        return self.outcome

    @property
    def running(self) -> bool:
        """Not finished yet (queued or running)."""
        return not self._finished.is_set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else time.time()) - self.started

    def eta_s(self) -> float | None:
        """Seconds left in the current phase at its rate so far; None until there is a rate, or when finished."""
        if not self.running or self.total <= 0 or self.done >= self.total or self.done <= self._phase_done0:
            return None
        elapsed = time.monotonic() - self._phase_start
        if elapsed < MIN_RATE_S:
            return None
        return elapsed * (self.total - self.done) / (self.done - self._phase_done0)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job finished (True) or timeout_s passed (False)."""
        return self._finished.wait(timeout_s)

    def progress(self, done: int, total: int, message: str | None = None, *_: Any) -> None:
        """A core.types.Progress for the work function: done of total in the current phase (a lower
        done or a new total starts a new phase, with its own rate), message: the phase's words.
        Raises JobCancelledError once a cancel was requested, so any loop that reports progress
        stops at its next batch without knowing about jobs."""
        if self._cancel.is_set():
            raise JobCancelledError(f"{self.title}: cancelled")
        done, total = int(done), int(total)
        if done < self.done or total != self.total:
            self._phase_start, self._phase_done0 = time.monotonic(), done
        self.done, self.total = done, total
        if message:
            self.phase = message

    def set_phase(self, phase: str) -> None:
        """Name what the job does now (shown next to its progress)."""
        if self._cancel.is_set():
            raise JobCancelledError(f"{self.title}: cancelled")
        self.phase = phase

    def cancelled(self) -> bool:
        """For work functions that check between batches themselves: True once a cancel was requested."""
        return self._cancel.is_set()

    def request_cancel(self, by: str) -> None:
        self.cancelled_by = by
        self._cancel.set()

    def run(self, fn: Work) -> None:
        """Run fn(self.progress, self.cancelled) in the calling worker thread, recording its result
        or error; never raises."""
        if self._cancel.is_set():  # cancelled while it waited for a worker
            self._finish(CANCELLED)
            return
        self.started = time.time()
        self._phase_start = time.monotonic()
        self.phase = "starting…"
        outcome = FAILED
        try:
            self.result = fn(self.progress, self.cancelled)
            outcome = DONE
            log.info("job %s (%s) done in %.1f s", self.id, self.title, self.elapsed_s)
        except CoreError as e:
            if isinstance(e, JobCancelledError) or self._cancel.is_set():  # stopped on the cancel
                outcome = CANCELLED
                log.info("job %s (%s) cancelled by %s", self.id, self.title, self.cancelled_by)
            else:
                self.error = e
                log.info("job %s (%s) failed: %s", self.id, self.title, e)
        except BaseException as e:  # kept for the pages to show: a worker has nobody to raise to
            self.error = e
            log.exception("job %s (%s) failed", self.id, self.title)
        finally:
            self._finish(outcome)

    def finish(self, outcome: str) -> None:
        """End a job run by its caller (JobRegistry.running_here) with DONE or FAILED."""
        self._finish(outcome)

    def _finish(self, outcome: str) -> None:
        self.outcome, self.phase, self.ended = outcome, outcome, time.time()
        self._finished.set()
